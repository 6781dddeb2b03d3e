import { randomBytes } from 'node:crypto';
import { AmqpChannelError } from '../protocol/errors.js';
import type { FieldTable } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';
import type { Queue } from '../queue/queue.js';
import { Completion } from './completion.js';
import { checkBindingAccess, validateBindingArguments } from './exchanges.js';
import { checkResource } from './permissions.js';
import type { Session } from './session.js';
import { checkServerNamedAllowed } from '../queue/queue-type.js';

/** RabbitMQ: amq.gen- followed by 22 url-safe base64 characters (128 random bits). */
export function generateName(prefix: string): string {
  return `${prefix}-${randomBytes(16).toString('base64url')}`;
}

export interface QueueDeclaration {
  /** '' = a server-named queue (amq.gen-…) */
  readonly name: string;
  /** spec: passive only checks that the queue exists and may be used (no permission is needed) */
  readonly passive?: boolean;
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly arguments: FieldTable;
}

export interface QueueDeclared {
  readonly queue: Queue;
  readonly messageCount: number;
  readonly consumerCount: number;
}

export interface QueueBinding {
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly arguments: FieldTable;
}

function lockedError(s: Session, name: string): AmqpChannelError {
  return new AmqpChannelError(
    ReplyCode.ResourceLocked,
    `cannot obtain exclusive access to locked ${s.vhost.describeQueue(name)}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
  );
}

/** spec: an exclusive queue may only be used by the connection that declared it → 405. */
export function checkExclusiveAccess(s: Session, q: Queue): void {
  if (q.exclusive && (s.owner === null || q.options.exclusiveOwner !== s.owner)) throw lockedError(s, q.name);
}

/** A queue this session may use: 404 when missing, 405 when another connection's exclusive queue. */
export function usableQueue(s: Session, name: string): Queue {
  const q = s.vhost.getQueue(name);
  checkExclusiveAccess(s, q);
  return q;
}

function declared(q: Queue): QueueDeclared {
  return { queue: q, messageCount: q.messageCount, consumerCount: q.consumerCount };
}

/**
 * queue.declare (rabbit_channel's order: reserved name, configure on the actual name,
 * exclusivity and equivalence of an existing queue, max-queues, dead-letter permissions,
 * declare). Server-named queues are checked under their generated name, as RabbitMQ does.
 */
export function declareQueue(s: Session, d: QueueDeclaration): Completion<QueueDeclared> {
  const vhost = s.vhost;
  if (d.passive === true) {
    const q = vhost.getQueue(d.name);
    checkExclusiveAccess(s, q);
    return Completion.done(declared(q));
  }
  let name = d.name;
  if (name === '') {
    // RabbitMQ: quorum and stream queues cannot be server-named (checked before anything else)
    checkServerNamedAllowed(d.arguments);
    name = generateName('amq.gen');
  } else if (name.startsWith('amq.')) {
    throw new AmqpChannelError(ReplyCode.AccessRefused, `queue name '${name}' contains reserved prefix 'amq.*'`);
  }
  checkResource(s, 'queue', name, 'configure');
  const existing = vhost.findQueue(name);
  if (existing !== undefined) {
    checkExclusiveAccess(s, existing);
    // RabbitMQ: redeclaring with a different exclusive flag is a lock conflict, not an inequivalence
    if (existing.exclusive !== d.exclusive) throw lockedError(s, name);
  } else {
    if (d.exclusive && s.owner === null) {
      throw new AmqpChannelError(ReplyCode.PreconditionFailed, `exclusive ${vhost.describeQueue(name)} needs a client connection to own it`);
    }
    const max = s.core.access.limits(vhost.name).maxQueues;
    if (max !== undefined && max >= 0 && vhost.queues.size >= max) {
      throw new AmqpChannelError(ReplyCode.PreconditionFailed, `cannot declare queue '${name}': queue limit in vhost '${vhost.name}' (${max}) is reached`);
    }
    // RabbitMQ: dead-lettering needs read on the new queue and write on its dead-letter exchange
    const dlx = d.arguments.get('x-dead-letter-exchange');
    if (dlx !== undefined && (dlx.type === 'S' || dlx.type === 'x')) {
      checkResource(s, 'queue', name, 'read');
      checkResource(s, 'exchange', dlx.value.toString('utf8'), 'write');
    }
  }
  const writes = vhost.topologyWrites;
  const q = vhost.declareQueue(name, {
    durable: d.durable,
    autoDelete: d.autoDelete,
    exclusiveOwner: d.exclusive ? s.owner : null,
    arguments: d.arguments,
  });
  if (q.exclusive) s.exclusiveQueues.add(q);
  return Completion.of(declared(q), vhost.topologyWrites !== writes, s.core.store);
}

/** queue.delete: configure on the queue; a missing queue is deleted successfully with a count of 0 (RabbitMQ 3.x). */
export function deleteQueue(s: Session, name: string, options: { ifUnused?: boolean; ifEmpty?: boolean } = {}): Completion<number> {
  const vhost = s.vhost;
  checkResource(s, 'queue', name, 'configure');
  const q = vhost.findQueue(name);
  if (q === undefined) return Completion.done(0);
  checkExclusiveAccess(s, q);
  if (options.ifUnused === true && q.consumerCount > 0) {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, `${vhost.describeQueue(q.name)} in use`);
  }
  if (options.ifEmpty === true && q.messageCount > 0) {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, `${vhost.describeQueue(q.name)} not empty`);
  }
  const writes = vhost.topologyWrites;
  const messageCount = vhost.deleteQueue(q);
  s.exclusiveQueues.delete(q);
  return Completion.of(messageCount, vhost.topologyWrites !== writes, s.core.store);
}

/**
 * queue.purge: read on the queue. Returns the number of messages purged, final once a
 * durable queue's purge is committed (its stored messages then stay gone after a crash).
 */
export function purgeQueue(s: Session, name: string): Completion<number> {
  checkResource(s, 'queue', name, 'read');
  const q = usableQueue(s, name);
  const vhost = s.vhost;
  const writes = vhost.topologyWrites;
  const n = vhost.purgeQueue(q);
  return Completion.of(n, vhost.topologyWrites !== writes, s.core.store);
}

/** queue.bind: write on the queue, read on the exchange (and topic read on the key). */
export function bindQueue(s: Session, b: QueueBinding): Completion<void> {
  checkBindingAccess(s, b.exchange, 'queue', b.queue, b.routingKey);
  const vhost = s.vhost;
  // RabbitMQ looks the exchange up first: with both missing, the exchange is reported
  const ex = vhost.getExchange(b.exchange);
  const q = usableQueue(s, b.queue);
  validateBindingArguments(ex, b.arguments);
  const writes = vhost.topologyWrites;
  vhost.bind(ex, q, b.routingKey, b.arguments);
  return Completion.of<void>(undefined, vhost.topologyWrites !== writes, s.core.store);
}

/**
 * queue.unbind. RabbitMQ 3.x: unbinding what does not exist (binding, queue or exchange)
 * succeeds; only an existing binding of another connection's exclusive queue is locked.
 */
export function unbindQueue(s: Session, b: QueueBinding): Completion<void> {
  checkBindingAccess(s, b.exchange, 'queue', b.queue, b.routingKey);
  const vhost = s.vhost;
  const ex = vhost.exchanges.get(b.exchange);
  const q = vhost.findQueue(b.queue);
  const writes = vhost.topologyWrites;
  if (ex !== undefined && q !== undefined && ex.table.hasBinding(q, b.routingKey, b.arguments)) {
    checkExclusiveAccess(s, q);
    vhost.unbind(ex, q, b.routingKey, b.arguments);
  }
  return Completion.of<void>(undefined, vhost.topologyWrites !== writes, s.core.store);
}
