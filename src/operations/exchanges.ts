import { AmqpChannelError, AmqpConnectionError } from '../protocol/errors.js';
import type { FieldTable } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';
import { validateHeadersBindingArgs } from '../routing/headers-match.js';
import { EXCHANGE_TYPES, type Exchange, type ExchangeType } from '../vhost/exchange.js';
import { Completion } from './completion.js';
import { checkResource, checkTopic } from './permissions.js';
import type { Session } from './session.js';

export interface ExchangeDeclaration {
  readonly name: string;
  readonly type: string;
  /** spec: passive only checks that the exchange exists (no permission is needed) */
  readonly passive?: boolean;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: FieldTable;
}

export interface ExchangeBinding {
  readonly source: string;
  readonly destination: string;
  readonly routingKey: string;
  readonly arguments: FieldTable;
}

function checkNotDefault(name: string): void {
  if (name === '') throw new AmqpChannelError(ReplyCode.AccessRefused, 'operation not permitted on the default exchange');
}

/** exchange.declare (rabbit_channel's order: type, default, configure, reserved name, alternate exchange, declare). */
export function declareExchange(s: Session, d: ExchangeDeclaration): Completion<Exchange> {
  const vhost = s.vhost;
  const name = d.name;
  if (d.passive === true) {
    checkNotDefault(name);
    return Completion.done(vhost.getExchange(name));
  }
  // RabbitMQ checks the type before anything else: an unknown type is a connection error
  if (!EXCHANGE_TYPES.has(d.type)) throw new AmqpConnectionError(ReplyCode.CommandInvalid, `unknown exchange type '${d.type}'`);
  checkNotDefault(name);
  checkResource(s, 'exchange', name, 'configure');
  if (vhost.exchanges.get(name) === undefined) {
    if (name.startsWith('amq.')) throw new AmqpChannelError(ReplyCode.AccessRefused, `exchange name '${name}' contains reserved prefix 'amq.*'`);
    // RabbitMQ: an alternate exchange needs read on the new exchange and write on the AE
    const ae = d.arguments.get('alternate-exchange');
    if (ae !== undefined && ae.type === 'S') {
      checkResource(s, 'exchange', name, 'read');
      checkResource(s, 'exchange', ae.value.toString('utf8'), 'write');
    }
  }
  const writes = vhost.topologyWrites;
  const ex = vhost.declareExchange(name, d.type as ExchangeType, {
    durable: d.durable,
    autoDelete: d.autoDelete,
    internal: d.internal,
    arguments: d.arguments,
  });
  return Completion.of(ex, vhost.topologyWrites !== writes, s.core.store);
}

/** exchange.delete: configure on the exchange; a missing exchange is deleted successfully (RabbitMQ 3.x). */
export function deleteExchange(s: Session, name: string, ifUnused: boolean): Completion<void> {
  const vhost = s.vhost;
  checkNotDefault(name);
  if (name.startsWith('amq.')) throw new AmqpChannelError(ReplyCode.AccessRefused, `deletion of system ${vhost.describeExchange(name)} not allowed`);
  checkResource(s, 'exchange', name, 'configure');
  const writes = vhost.topologyWrites;
  const ex = vhost.exchanges.get(name);
  if (ex !== undefined) vhost.deleteExchange(ex, ifUnused);
  return Completion.of<void>(undefined, vhost.topologyWrites !== writes, s.core.store);
}

/**
 * The checks of every binding change (rabbit_channel:binding_action): write on the
 * destination, neither end the default exchange, read on the source, and the topic read
 * permission on the routing key when the source is a topic exchange.
 */
export function checkBindingAccess(s: Session, source: string, destKind: 'queue' | 'exchange', destination: string, routingKey: string): void {
  checkResource(s, destKind, destination, 'write');
  if (destKind === 'exchange') checkNotDefault(destination);
  checkNotDefault(source);
  checkResource(s, 'exchange', source, 'read');
  const ex = s.vhost.exchanges.get(source);
  if (ex !== undefined) checkTopic(s, ex, routingKey, 'read');
}

/** Bindings on a headers exchange (or a delayed one routing as headers) must carry a valid x-match. */
export function validateBindingArguments(source: Exchange, args: FieldTable): void {
  if (source.type === 'headers' || (source.delayed && source.routesOnHeaders)) validateHeadersBindingArgs(args);
}

/** exchange.bind */
export function bindExchange(s: Session, b: ExchangeBinding): Completion<void> {
  checkBindingAccess(s, b.source, 'exchange', b.destination, b.routingKey);
  const vhost = s.vhost;
  const source = vhost.getExchange(b.source);
  const dest = vhost.getExchange(b.destination);
  validateBindingArguments(source, b.arguments);
  const writes = vhost.topologyWrites;
  vhost.bind(source, dest, b.routingKey, b.arguments);
  return Completion.of<void>(undefined, vhost.topologyWrites !== writes, s.core.store);
}

/** exchange.unbind: RabbitMQ 3.x: unbinding with a missing source or destination succeeds. */
export function unbindExchange(s: Session, b: ExchangeBinding): Completion<void> {
  checkBindingAccess(s, b.source, 'exchange', b.destination, b.routingKey);
  const vhost = s.vhost;
  const source = vhost.exchanges.get(b.source);
  const dest = vhost.exchanges.get(b.destination);
  const writes = vhost.topologyWrites;
  if (source !== undefined && dest !== undefined) vhost.unbind(source, dest, b.routingKey, b.arguments);
  return Completion.of<void>(undefined, vhost.topologyWrites !== writes, s.core.store);
}
