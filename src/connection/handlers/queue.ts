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
  if (q.exclusive && q.options.exclusiveOwner !== ch.conn) throw lockedError(ch, q.name);
}

function lockedError(ch: Channel, name: string): AmqpChannelError {
  return new AmqpChannelError(
    ReplyCode.ResourceLocked,
    `cannot obtain exclusive access to locked ${ch.vhost.describeQueue(name)}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
  );
}

/** spec: an empty queue name means the queue last declared on this channel. */
export function expandQueueName(ch: Channel, name: string): string {
  if (name !== '') return name;
  if (ch.lastDeclaredQueue === null) throw new AmqpChannelError(ReplyCode.NotFound, 'no previously declared queue');
  return ch.lastDeclaredQueue;
}

/** Finds a queue the channel may use: 404 when missing, 405 when another connection's exclusive queue. */
export function usableQueue(ch: Channel, name: string): Queue {
  const q = ch.vhost.getQueue(expandQueueName(ch, name));
  checkExclusiveAccess(ch, q);
  return q;
}

export function handleQueueDeclare(ch: Channel, args: Args<typeof MethodId.QueueDeclare>): void {
  const vhost = ch.vhost;
  const writes = vhost.topologyWrites;
  let q: Queue;
  if (args.passive) {
    // no empty-name shortcut here: a passive declare of '' looks for a queue named ''
    q = vhost.getQueue(args.queue);
    checkExclusiveAccess(ch, q);
  } else {
    let name = args.queue;
    if (name === '') name = generateName('amq.gen');
    else if (name.startsWith('amq.')) {
      throw new AmqpChannelError(ReplyCode.AccessRefused, `queue name '${name}' contains reserved prefix 'amq.*'`);
    }
    const existing = vhost.findQueue(name);
    if (existing !== undefined) {
      checkExclusiveAccess(ch, existing);
      // RabbitMQ: redeclaring with a different exclusive flag is a lock conflict, not an inequivalence
      if (existing.exclusive !== args.exclusive) throw lockedError(ch, name);
    }
    q = vhost.declareQueue(name, {
      durable: args.durable,
      autoDelete: args.autoDelete,
      exclusiveOwner: args.exclusive ? ch.conn : null,
      arguments: args.arguments,
    });
    if (q.exclusive) ch.conn.exclusiveQueues.add(q);
  }
  ch.lastDeclaredQueue = q.name;
  if (!args.noWait) {
    ch.reply(
      { id: MethodId.QueueDeclareOk, args: { queue: q.name, messageCount: q.messageCount, consumerCount: q.consumerCount } },
      vhost.topologyWrites !== writes,
    );
  }
}

/** spec: an empty queue name and an empty routing key both mean the last declared queue. */
function bindingKeyOf(ch: Channel, queue: string, routingKey: string): string {
  return queue === '' && routingKey === '' ? expandQueueName(ch, '') : routingKey;
}

export function handleQueueBind(ch: Channel, args: Args<typeof MethodId.QueueBind>): void {
  const writes = ch.vhost.topologyWrites;
  if (args.exchange === '') {
    throw new AmqpChannelError(ReplyCode.AccessRefused, 'operation not permitted on the default exchange');
  }
  const queueName = expandQueueName(ch, args.queue);
  // RabbitMQ looks the exchange up first: with both missing, the exchange is reported
  const ex = ch.vhost.getExchange(args.exchange);
  const q = usableQueue(ch, queueName);
  if (ex.type === 'headers' || (ex.delayed && ex.routesOnHeaders)) validateHeadersBindingArgs(args.arguments);
  ch.vhost.bind(ex, q, bindingKeyOf(ch, args.queue, args.routingKey), args.arguments);
  if (!args.noWait) ch.reply({ id: MethodId.QueueBindOk, args: {} }, ch.vhost.topologyWrites !== writes);
}

export function handleQueueUnbind(ch: Channel, args: Args<typeof MethodId.QueueUnbind>): void {
  const writes = ch.vhost.topologyWrites;
  if (args.exchange === '') {
    throw new AmqpChannelError(ReplyCode.AccessRefused, 'operation not permitted on the default exchange');
  }
  const queueName = expandQueueName(ch, args.queue);
  const ex = ch.vhost.exchanges.get(args.exchange);
  const q = ch.vhost.findQueue(queueName);
  const routingKey = bindingKeyOf(ch, args.queue, args.routingKey);
  // RabbitMQ 3.x: unbinding what does not exist (binding, queue or exchange) succeeds;
  // only an existing binding of another connection's exclusive queue is locked
  if (ex !== undefined && q !== undefined && ex.table.hasBinding(q, routingKey, args.arguments)) {
    checkExclusiveAccess(ch, q);
    ch.vhost.unbind(ex, q, routingKey, args.arguments);
  }
  ch.reply({ id: MethodId.QueueUnbindOk, args: {} }, ch.vhost.topologyWrites !== writes);
}

export function handleQueuePurge(ch: Channel, args: Args<typeof MethodId.QueuePurge>): void {
  const q = usableQueue(ch, args.queue);
  const messageCount = q.purge();
  if (!args.noWait) ch.conn.send(ch.id, { id: MethodId.QueuePurgeOk, args: { messageCount } });
}

export function handleQueueDelete(ch: Channel, args: Args<typeof MethodId.QueueDelete>): void {
  const vhost = ch.vhost;
  const writes = vhost.topologyWrites;
  const q = vhost.findQueue(expandQueueName(ch, args.queue));
  let messageCount = 0;
  // RabbitMQ 3.x: deleting a missing queue succeeds with a count of 0
  if (q !== undefined) {
    checkExclusiveAccess(ch, q);
    if (args.ifUnused && q.consumerCount > 0) {
      throw new AmqpChannelError(ReplyCode.PreconditionFailed, `${vhost.describeQueue(q.name)} in use`);
    }
    if (args.ifEmpty && q.messageCount > 0) {
      throw new AmqpChannelError(ReplyCode.PreconditionFailed, `${vhost.describeQueue(q.name)} not empty`);
    }
    messageCount = vhost.deleteQueue(q);
    ch.conn.exclusiveQueues.delete(q);
  }
  if (!args.noWait) ch.reply({ id: MethodId.QueueDeleteOk, args: { messageCount } }, vhost.topologyWrites !== writes);
}
