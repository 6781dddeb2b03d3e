import { AmqpChannelError, AmqpConnectionError } from '../../protocol/errors.js';
import { MethodId } from '../../protocol/generated/constants.js';
import type { Method } from '../../protocol/generated/methods.js';
import { ReplyCode } from '../../protocol/reply-code.js';
import { consume, get } from '../../operations/basic.js';
import { DIRECT_REPLY_TO } from '../../operations/direct-reply-to.js';
import { generateName } from '../../operations/queues.js';
import type { Channel } from '../channel.js';
import { expandQueueName } from './queue.js';

type Args<I extends Method['id']> = Extract<Method, { id: I }>['args'];

export function handleBasicQos(ch: Channel, args: Args<typeof MethodId.BasicQos>): void {
  // RabbitMQ semantics: global=false → per consumer (consumers created after this), global=true → per channel.
  if (args.prefetchSize !== 0) {
    // RabbitMQ does not implement prefetch_size and says so with a connection error
    throw new AmqpConnectionError(ReplyCode.NotImplemented, `prefetch_size!=0 (${args.prefetchSize})`, 60, 10);
  }
  if (args.global) {
    ch.channelPrefetch = args.prefetchCount;
    ch.resumeDeliveries();
  } else {
    ch.consumerPrefetch = args.prefetchCount;
  }
  ch.conn.send(ch.id, { id: MethodId.BasicQosOk, args: {} });
}

export function handleBasicConsume(ch: Channel, args: Args<typeof MethodId.BasicConsume>): void {
  const tag = args.consumerTag === '' ? generateName('amq.ctag') : args.consumerTag;
  if (ch.consumers.has(tag) || ch.directReplyConsumerTag === tag) {
    throw new AmqpConnectionError(ReplyCode.NotAllowed, `attempt to reuse consumer tag '${tag}'`, 60, 20);
  }
  if (args.queue === DIRECT_REPLY_TO) {
    // RabbitMQ: the reply consumer needs no permission; it must be no-ack, one per channel
    if (!args.noAck) throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'reply consumer cannot acknowledge', 60, 20);
    if (ch.directReplyConsumerTag !== null) throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'reply consumer already set', 60, 20);
    ch.startDirectReply(tag);
  } else {
    const consumer = consume(ch.session, {
      queue: expandQueueName(ch, args.queue),
      consumerTag: tag,
      noAck: args.noAck,
      exclusive: args.exclusive,
      arguments: args.arguments,
      prefetchCount: ch.consumerPrefetch,
      channelPrefetch: ch.channelPrefetch,
      owner: ch,
    });
    // deliveries run in a later pass: consume-ok still goes first
    ch.consumers.set(tag, consumer);
  }
  if (!args.noWait) ch.conn.send(ch.id, { id: MethodId.BasicConsumeOk, args: { consumerTag: tag } });
}

export function handleBasicCancel(ch: Channel, args: Args<typeof MethodId.BasicCancel>): void {
  if (ch.directReplyConsumerTag === args.consumerTag) ch.stopDirectReply();
  else ch.removeConsumer(args.consumerTag);
  // spec: cancelling an unknown consumer tag is not an error
  if (!args.noWait) ch.conn.send(ch.id, { id: MethodId.BasicCancelOk, args: { consumerTag: args.consumerTag } });
}

export function handleBasicGet(ch: Channel, args: Args<typeof MethodId.BasicGet>): void {
  ch.afterOperation(get(ch.session, expandQueueName(ch, args.queue)), (q) => {
    const entry = q.shift();
    if (entry === undefined) {
      ch.stats.getEmpty++;
      q.stats.getEmpty++;
      ch.conn.send(ch.id, { id: MethodId.BasicGetEmpty, args: { reserved1: '' } });
    } else ch.deliverGetOk(q, entry, args.noAck);
  });
}

export function handleBasicRecover(ch: Channel, requeue: boolean, sync: boolean): void {
  if (!requeue) {
    // RabbitMQ: basic.recover requeue=false is not supported
    throw new AmqpConnectionError(ReplyCode.NotImplemented, 'requeue=false', 60, sync ? 110 : 100);
  }
  ch.requeueAllUnacked();
  if (sync) ch.conn.send(ch.id, { id: MethodId.BasicRecoverOk, args: {} });
}
