import { randomBytes } from 'node:crypto';
import { AmqpChannelError } from '../../protocol/errors.js';
import { MethodId } from '../../protocol/generated/constants.js';
import type { Method } from '../../protocol/generated/methods.js';
import { ReplyCode } from '../../protocol/reply-code.js';
import type { Queue } from '../../queue/queue.js';
import { validateHeadersBindingArgs } from '../../routing/headers-match.js';
import type { Channel } from '../channel.js';

type Args<I extends Method['id']> = Extract<Method, { id: I }>['args'];

/** RabbitMQ: amq.gen- followed by 22 url-safe base64 characters (128 random bits). */
export function generateName(prefix: string): string {
  return `${prefix}-${randomBytes(16).toString('base64url')}`;
}

/** spec: an exclusive queue may only be used by the connection that declared it → 405. */
export function checkExclusiveAccess(ch: Channel, q: Queue): void {
  if (q.exclusive && q.options.exclusiveOwner !== ch.conn) {
    throw new AmqpChannelError(
      ReplyCode.ResourceLocked,
      `cannot obtain exclusive access to locked ${ch.vhost.describeQueue(q.name)}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
    );
  }
}

/** Finds a queue the channel may use: 404 when missing, 405 when another connection's exclusive queue. */
export function usableQueue(ch: Channel, name: string): Queue {
  const q = ch.vhost.getQueue(name);
  checkExclusiveAccess(ch, q);
  return q;
}

export function handleQueueDeclare(ch: Channel, args: Args<typeof MethodId.QueueDeclare>): void {
  const vhost = ch.vhost;
  let q: Queue;
  if (args.passive) {
    q = usableQueue(ch, args.queue);
  } else {
    let name = args.queue;
    if (name === '') name = generateName('amq.gen');
    else if (name.startsWith('amq.')) {
      throw new AmqpChannelError(ReplyCode.AccessRefused, `queue name '${name}' contains reserved prefix 'amq.*'`);
    }
    const existing = vhost.findQueue(name);
    if (existing !== undefined) checkExclusiveAccess(ch, existing);
    q = vhost.declareQueue(name, {
      durable: args.durable,
      autoDelete: args.autoDelete,
      exclusiveOwner: args.exclusive ? ch.conn : null,
      arguments: args.arguments,
    });
    if (q.exclusive) ch.conn.exclusiveQueues.add(q);
  }
  if (!args.noWait) {
    ch.conn.send(ch.id, {
      id: MethodId.QueueDeclareOk,
      args: { queue: q.name, messageCount: q.messageCount, consumerCount: q.consumerCount },
    });
  }
}

export function handleQueueBind(ch: Channel, args: Args<typeof MethodId.QueueBind>): void {
  const q = usableQueue(ch, args.queue);
  if (args.exchange === '') {
    throw new AmqpChannelError(ReplyCode.AccessRefused, 'operation not permitted on the default exchange');
  }
  const ex = ch.vhost.getExchange(args.exchange);
  if (ex.type === 'headers') validateHeadersBindingArgs(args.arguments);
  ch.vhost.bind(ex, q, args.routingKey, args.arguments);
  if (!args.noWait) ch.conn.send(ch.id, { id: MethodId.QueueBindOk, args: {} });
}

export function handleQueueUnbind(ch: Channel, args: Args<typeof MethodId.QueueUnbind>): void {
  const q = usableQueue(ch, args.queue);
  if (args.exchange === '') {
    throw new AmqpChannelError(ReplyCode.AccessRefused, 'operation not permitted on the default exchange');
  }
  const ex = ch.vhost.getExchange(args.exchange);
  ch.vhost.unbind(ex, q, args.routingKey, args.arguments);
  ch.conn.send(ch.id, { id: MethodId.QueueUnbindOk, args: {} });
}

export function handleQueuePurge(ch: Channel, args: Args<typeof MethodId.QueuePurge>): void {
  const q = usableQueue(ch, args.queue);
  const messageCount = q.purge();
  if (!args.noWait) ch.conn.send(ch.id, { id: MethodId.QueuePurgeOk, args: { messageCount } });
}

export function handleQueueDelete(ch: Channel, args: Args<typeof MethodId.QueueDelete>): void {
  const vhost = ch.vhost;
  const q = vhost.findQueue(args.queue);
  let messageCount = 0;
  // RabbitMQ 3.x: deleting a missing queue succeeds with a count of 0
  if (q !== undefined) {
    checkExclusiveAccess(ch, q);
    if (args.ifUnused && q.consumerCount > 0) {
      throw new AmqpChannelError(ReplyCode.PreconditionFailed, `${vhost.describeQueue(q.name)} in use`);
    }
    if (args.ifEmpty && q.messageCount > 0) {
      throw new AmqpChannelError(ReplyCode.PreconditionFailed, `${vhost.describeQueue(q.name)} is not empty`);
    }
    messageCount = vhost.deleteQueue(q);
    ch.conn.exclusiveQueues.delete(q);
  }
  if (!args.noWait) ch.conn.send(ch.id, { id: MethodId.QueueDeleteOk, args: { messageCount } });
}
