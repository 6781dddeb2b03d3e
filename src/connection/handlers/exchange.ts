import { AmqpChannelError, AmqpConnectionError } from '../../protocol/errors.js';
import { MethodId } from '../../protocol/generated/constants.js';
import type { Method } from '../../protocol/generated/methods.js';
import { ReplyCode } from '../../protocol/reply-code.js';
import { validateHeadersBindingArgs } from '../../routing/headers-match.js';
import { EXCHANGE_TYPES, type Exchange, type ExchangeType } from '../../vhost/exchange.js';
import type { Channel } from '../channel.js';

type Args<I extends Method['id']> = Extract<Method, { id: I }>['args'];

function checkNotDefault(name: string): void {
  if (name === '') {
    throw new AmqpChannelError(ReplyCode.AccessRefused, 'operation not permitted on the default exchange');
  }
}

export function handleExchangeDeclare(ch: Channel, args: Args<typeof MethodId.ExchangeDeclare>): void {
  const vhost = ch.vhost;
  const writes = vhost.topologyWrites;
  const name = args.exchange;
  if (args.passive) {
    checkNotDefault(name);
    // spec: passive declare only checks existence; the other fields are ignored
    vhost.getExchange(name);
  } else {
    // RabbitMQ checks the type before anything else: an unknown type is a connection error
    if (!EXCHANGE_TYPES.has(args.type)) {
      throw new AmqpConnectionError(ReplyCode.CommandInvalid, `unknown exchange type '${args.type}'`);
    }
    checkNotDefault(name);
    if (vhost.exchanges.get(name) === undefined && name.startsWith('amq.')) {
      throw new AmqpChannelError(ReplyCode.AccessRefused, `exchange name '${name}' contains reserved prefix 'amq.*'`);
    }
    vhost.declareExchange(name, args.type as ExchangeType, {
      durable: args.durable,
      autoDelete: args.autoDelete,
      internal: args.internal,
      arguments: args.arguments,
    });
  }
  if (!args.noWait) ch.reply({ id: MethodId.ExchangeDeclareOk, args: {} }, vhost.topologyWrites !== writes);
}

export function handleExchangeDelete(ch: Channel, args: Args<typeof MethodId.ExchangeDelete>): void {
  const vhost = ch.vhost;
  const writes = vhost.topologyWrites;
  const name = args.exchange;
  checkNotDefault(name);
  if (name.startsWith('amq.')) {
    throw new AmqpChannelError(ReplyCode.AccessRefused, `deletion of system ${vhost.describeExchange(name)} not allowed`);
  }
  const ex = vhost.exchanges.get(name);
  // RabbitMQ 3.x: deleting a missing exchange succeeds
  if (ex !== undefined) vhost.deleteExchange(ex, args.ifUnused);
  if (!args.noWait) ch.reply({ id: MethodId.ExchangeDeleteOk, args: {} }, vhost.topologyWrites !== writes);
}

function bindingEnds(ch: Channel, destination: string, source: string): [Exchange, Exchange] {
  const vhost = ch.vhost;
  return [vhost.getExchange(source), vhost.getExchange(destination)];
}

export function handleExchangeBind(ch: Channel, args: Args<typeof MethodId.ExchangeBind>): void {
  const writes = ch.vhost.topologyWrites;
  checkNotDefault(args.destination);
  checkNotDefault(args.source);
  const [source, dest] = bindingEnds(ch, args.destination, args.source);
  if (source.type === 'headers' || (source.delayed && source.routesOnHeaders)) validateHeadersBindingArgs(args.arguments);
  ch.vhost.bind(source, dest, args.routingKey, args.arguments);
  if (!args.noWait) ch.reply({ id: MethodId.ExchangeBindOk, args: {} }, ch.vhost.topologyWrites !== writes);
}

export function handleExchangeUnbind(ch: Channel, args: Args<typeof MethodId.ExchangeUnbind>): void {
  const writes = ch.vhost.topologyWrites;
  checkNotDefault(args.destination);
  checkNotDefault(args.source);
  const source = ch.vhost.exchanges.get(args.source);
  const dest = ch.vhost.exchanges.get(args.destination);
  // RabbitMQ 3.x: unbinding with a missing source or destination succeeds
  if (source !== undefined && dest !== undefined) ch.vhost.unbind(source, dest, args.routingKey, args.arguments);
  if (!args.noWait) ch.reply({ id: MethodId.ExchangeUnbindOk, args: {} }, ch.vhost.topologyWrites !== writes);
}
