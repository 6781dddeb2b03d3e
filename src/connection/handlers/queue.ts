import { AmqpChannelError } from '../../protocol/errors.js';
import { MethodId } from '../../protocol/generated/constants.js';
import type { Method } from '../../protocol/generated/methods.js';
import { ReplyCode } from '../../protocol/reply-code.js';
import { bindQueue, declareQueue, deleteQueue, purgeQueue, unbindQueue } from '../../operations/queues.js';
import type { Channel } from '../channel.js';

type Args<I extends Method['id']> = Extract<Method, { id: I }>['args'];

/** spec: an empty queue name means the queue last declared on this channel. */
export function expandQueueName(ch: Channel, name: string): string {
  if (name !== '') return name;
  if (ch.lastDeclaredQueue === null) throw new AmqpChannelError(ReplyCode.NotFound, 'no previously declared queue');
  return ch.lastDeclaredQueue;
}

/** spec: an empty queue name and an empty routing key both mean the last declared queue. */
function bindingKeyOf(ch: Channel, queue: string, routingKey: string): string {
  return queue === '' && routingKey === '' ? expandQueueName(ch, '') : routingKey;
}

export function handleQueueDeclare(ch: Channel, args: Args<typeof MethodId.QueueDeclare>): void {
  // no empty-name shortcut here: a passive declare of '' looks for a queue named ''
  const done = declareQueue(ch.session, {
    name: args.queue,
    passive: args.passive,
    durable: args.durable,
    exclusive: args.exclusive,
    autoDelete: args.autoDelete,
    arguments: args.arguments,
  });
  ch.lastDeclaredQueue = done.value.queue.name;
  if (!args.noWait) {
    ch.reply(done, (d) => ({ id: MethodId.QueueDeclareOk, args: { queue: d.queue.name, messageCount: d.messageCount, consumerCount: d.consumerCount } }));
  }
}

export function handleQueueBind(ch: Channel, args: Args<typeof MethodId.QueueBind>): void {
  const done = bindQueue(ch.session, {
    queue: expandQueueName(ch, args.queue),
    exchange: args.exchange,
    routingKey: bindingKeyOf(ch, args.queue, args.routingKey),
    arguments: args.arguments,
  });
  if (!args.noWait) ch.reply(done, () => ({ id: MethodId.QueueBindOk, args: {} }));
}

export function handleQueueUnbind(ch: Channel, args: Args<typeof MethodId.QueueUnbind>): void {
  const done = unbindQueue(ch.session, {
    queue: expandQueueName(ch, args.queue),
    exchange: args.exchange,
    routingKey: bindingKeyOf(ch, args.queue, args.routingKey),
    arguments: args.arguments,
  });
  ch.reply(done, () => ({ id: MethodId.QueueUnbindOk, args: {} }));
}

export function handleQueuePurge(ch: Channel, args: Args<typeof MethodId.QueuePurge>): void {
  const done = purgeQueue(ch.session, expandQueueName(ch, args.queue));
  if (!args.noWait) ch.reply(done, (messageCount) => ({ id: MethodId.QueuePurgeOk, args: { messageCount } }));
}

export function handleQueueDelete(ch: Channel, args: Args<typeof MethodId.QueueDelete>): void {
  const done = deleteQueue(ch.session, expandQueueName(ch, args.queue), { ifUnused: args.ifUnused, ifEmpty: args.ifEmpty });
  if (!args.noWait) ch.reply(done, (messageCount) => ({ id: MethodId.QueueDeleteOk, args: { messageCount } }));
}
