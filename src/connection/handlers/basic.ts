import { AmqpChannelError, AmqpConnectionError } from '../../protocol/errors.js';
import { MethodId } from '../../protocol/generated/constants.js';
import type { Method } from '../../protocol/generated/methods.js';
import { ReplyCode } from '../../protocol/reply-code.js';
import { Message } from '../../message/message.js';
import { encodeBasicProperties } from '../../protocol/generated/properties.js';
import type { Queue } from '../../queue/queue.js';
import type { RouteSet } from '../../routing/route-set.js';
import { peekOctet, PropertyFlag } from '../../message/properties-view.js';
import { Consumer } from '../../queue/consumer.js';
import { parseConsumerPriority } from '../../queue/queue-arguments.js';
import { fieldTypeName } from '../../protocol/field-table.js';
import { messageDelay } from '../../delayed/delayed-message-arguments.js';
import { Enqueued } from '../../queue/queue.js';
import type { Exchange } from '../../vhost/exchange.js';
import type { Channel } from '../channel.js';
import { DIRECT_REPLY_TO, isDirectReplyAddress, publishDirectReply, rewriteReplyTo, startDirectReplyConsumer } from '../direct-reply-to.js';
import { generateName, usableQueue } from './queue.js';

type Args<I extends Method['id']> = Extract<Method, { id: I }>['args'];

/** basic.publish method frame: checks that do not need the content (RabbitMQ's order). */
export function checkBasicPublish(ch: Channel, args: Args<typeof MethodId.BasicPublish>): Exchange {
  if (args.immediate) {
    // RabbitMQ 3.0+: immediate is not supported
    throw new AmqpConnectionError(ReplyCode.NotImplemented, 'immediate=true', 60, 40);
  }
  const ex = ch.vhost.getExchange(args.exchange);
  if (ex.options.internal) {
    throw new AmqpChannelError(
      ReplyCode.AccessRefused,
      `cannot publish to internal ${ch.vhost.describeExchange(ex.name)}`,
    );
  }
  return ex;
}

/**
 * The checks RabbitMQ's channel makes on a decoded content header, in its order:
 * user-id must be the authenticated user, expiration must parse, and delivery-mode must be
 * 1 or 2 (rabbit_channel check_user_id_header, check_expiration_header, then
 * rabbit_basic:message_no_id). The properties are known to decode (checked with the header).
 */
export function validateProperties(ch: Channel, message: Message): void {
  if (message.hasProperty(PropertyFlag.UserId)) {
    const userId = message.properties().userId;
    if (userId !== undefined && userId !== ch.conn.username) {
      throw new AmqpChannelError(
        ReplyCode.PreconditionFailed,
        `user_id property set to '${userId}' but authenticated user was '${ch.conn.username}'`,
        60,
        40,
      );
    }
  }
  if (message.hasProperty(PropertyFlag.Expiration)) {
    const expiration = message.properties().expiration ?? '';
    const error = expirationError(expiration);
    if (error !== null) throw new AmqpChannelError(ReplyCode.PreconditionFailed, `invalid expiration '${expiration}': ${error}`, 60, 40);
  }
  if (message.hasProperty(PropertyFlag.DeliveryMode)) {
    const mode = peekOctet(message.rawProperties, PropertyFlag.DeliveryMode);
    if (mode !== 1 && mode !== 2) {
      throw new AmqpChannelError(ReplyCode.PreconditionFailed, `invalid message: {delivery_mode_unknown,${mode}}`, 60, 40);
    }
  }
}

/** RabbitMQ: at most 10 years in milliseconds (rabbit_misc:check_expiry). */
const MAX_EXPIRATION = 315_360_000_000n;

/**
 * Why an expiration is invalid, printed as RabbitMQ prints it (rabbit_basic:parse_expiration
 * with Erlang's string:to_integer: an optional sign and digits, nothing after them), or
 * null when it is valid.
 */
export function expirationError(expiration: string): string | null {
  const m = /^([+-]?\d+)([\s\S]*)$/.exec(expiration);
  if (m === null) return 'no_integer';
  if (m[2] !== '') return `{leftover_string,${erlangString(m[2]!)}}`;
  const n = BigInt(m[1]!);
  if (n < 0n) return `{value_negative,${n}}`;
  if (n > MAX_EXPIRATION) return `{value_too_large,${n}}`;
  return null;
}

/** Erlang's ~p of a string: "…" when printable, else the list of its code points. */
function erlangString(s: string): string {
  if (/^[\x20-\x7e]*$/.test(s)) return `"${s.replace(/[\\"]/g, '\\$&')}"`;
  return `[${[...Buffer.from(s, 'utf8')].join(',')}]`;
}

/**
 * Routes a complete message and enqueues it. Unroutable + mandatory → basic.return
 * 312 NO_ROUTE (sent before the confirm, as RabbitMQ does). The outcome drives the
 * publisher confirm: Rejected when a queue refused the message (reject-publish
 * overflow: basic.nack), Stored when a durable queue wrote it (ack after the store's
 * batch is durable), Accepted otherwise (ack now).
 */
export function publish(ch: Channel, exchange: Exchange, message: Message, mandatory: boolean): Enqueued {
  if (message.hasProperty(PropertyFlag.ReplyTo) && message.properties().replyTo === DIRECT_REPLY_TO) {
    message = rewriteReplyTo(ch, message);
  }
  if (exchange.isDefault && isDirectReplyAddress(message.routingKey)) {
    if (!publishDirectReply(ch, message) && mandatory) ch.sendReturn(ReplyCode.NoRoute, 'NO_ROUTE', message);
    return Enqueued.Accepted;
  }
  if (exchange.delayed) {
    // x-delayed-message (Warren extension): a positive x-delay holds the message first
    const delay = messageDelay(message.headers());
    if (delay > 0) return ch.vhost.holdDelayed(exchange, message, delay);
  }
  const routed = ch.routed;
  routed.clear(); // empty unless an earlier publish threw half way
  ch.vhost.route(exchange, message, routed);
  // sender-selected distribution: a byte search of the raw headers first, a decode only on a hit
  const rawHeaders = message.rawHeaders();
  if (rawHeaders !== null && (rawHeaders.indexOf(CC_KEY) !== -1 || rawHeaders.indexOf(BCC_KEY) !== -1)) {
    message = routeSenderSelected(ch, exchange, message, routed);
  }
  if (routed.size === 0) {
    if (mandatory) ch.sendReturn(ReplyCode.NoRoute, 'NO_ROUTE', message);
    return Enqueued.Accepted;
  }
  const n = routed.size;
  if (message.persistent) {
    // the body is stored once; it is freed when the last durable queue lets go of it
    let durable = 0;
    for (let i = 0; i < n; i++) if (routed.get(i).storesPersistent) durable++;
    message.durableRefs = durable;
  }
  let outcome = Enqueued.Accepted;
  for (let i = 0; i < n; i++) {
    const r = routed.get(i).enqueue(message);
    if (r === Enqueued.Rejected) outcome = Enqueued.Rejected;
    else if (r === Enqueued.Stored && outcome === Enqueued.Accepted) outcome = Enqueued.Stored;
  }
  routed.clear();
  return outcome;
}

/** The encoded table keys (shortstr) of the sender-selected distribution headers. */
const CC_KEY = Buffer.from('\x02CC', 'latin1');
const BCC_KEY = Buffer.from('\x03BCC', 'latin1');

/**
 * Sender-selected distribution (RabbitMQ): CC and BCC headers (arrays of strings) add
 * routing keys; BCC is removed from the message before it is enqueued.
 */
function routeSenderSelected(ch: Channel, exchange: Exchange, message: Message, routed: RouteSet<Queue>): Message {
  const headers = message.headers();
  if (headers === undefined) return message;
  const cc = headers.get('CC');
  const bcc = headers.get('BCC');
  if (cc === undefined && bcc === undefined) return message;
  for (const [name, list] of [['CC', cc], ['BCC', bcc]] as const) {
    if (list !== undefined && list.type !== 'A') {
      throw new AmqpChannelError(
        ReplyCode.PreconditionFailed,
        `invalid message: {unacceptable_type_in_header,"${name}",${fieldTypeName(list.type)}}`,
        60,
        40,
      );
    }
  }
  for (const list of [cc, bcc]) {
    if (list === undefined || list.type !== 'A') continue;
    for (const key of list.value) {
      if (key.type !== 'S') continue;
      ch.vhost.route(exchange, new Message(exchange.name, key.value.toString('utf8'), message.rawProperties, message.body), routed);
    }
  }
  if (bcc === undefined) return message;
  const props = { ...message.properties() };
  const stripped = new Map(headers);
  stripped.delete('BCC');
  props.headers = stripped;
  return new Message(message.exchange, message.routingKey, encodeBasicProperties(props), message.body);
}

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
    startDirectReplyConsumer(ch, tag, args.noAck);
  } else {
    const q = usableQueue(ch, args.queue);
    if (q.hasExclusiveConsumer() || (args.exclusive && q.consumerCount > 0)) {
      throw new AmqpChannelError(ReplyCode.AccessRefused, `${ch.vhost.describeQueue(q.name)} in exclusive use`);
    }
    const priority = parseConsumerPriority(args.arguments, ch.vhost.describeQueue(q.name));
    const consumer = new Consumer(tag, q, ch, args.noAck, args.exclusive, ch.consumerPrefetch, args.arguments, priority);
    // consume-ok must precede the first delivery; deliveries run in a later pass anyway
    if (!args.noWait) ch.conn.send(ch.id, { id: MethodId.BasicConsumeOk, args: { consumerTag: tag } });
    ch.addConsumer(consumer);
    return;
  }
  if (!args.noWait) ch.conn.send(ch.id, { id: MethodId.BasicConsumeOk, args: { consumerTag: tag } });
}

export function handleBasicCancel(ch: Channel, args: Args<typeof MethodId.BasicCancel>): void {
  if (ch.directReplyConsumerTag === args.consumerTag) ch.directReplyConsumerTag = null;
  else ch.removeConsumer(args.consumerTag);
  // spec: cancelling an unknown consumer tag is not an error
  if (!args.noWait) ch.conn.send(ch.id, { id: MethodId.BasicCancelOk, args: { consumerTag: args.consumerTag } });
}

export function handleBasicGet(ch: Channel, args: Args<typeof MethodId.BasicGet>, waited = false): void {
  const q = usableQueue(ch, args.queue);
  if (q.hasPagedOnly && !waited) {
    // the queue's next messages are still in the store: answer once they are read in
    ch.deferUntil(q.pageIn(), () => handleBasicGet(ch, args, true));
    return;
  }
  const entry = q.shift();
  if (entry === undefined) {
    ch.conn.send(ch.id, { id: MethodId.BasicGetEmpty, args: { reserved1: '' } });
    return;
  }
  ch.deliverGetOk(q, entry, args.noAck);
}

export function handleBasicRecover(ch: Channel, requeue: boolean, sync: boolean): void {
  if (!requeue) {
    // RabbitMQ: basic.recover requeue=false is not supported
    throw new AmqpConnectionError(ReplyCode.NotImplemented, 'requeue=false', 60, sync ? 110 : 100);
  }
  ch.requeueAllUnacked();
  if (sync) ch.conn.send(ch.id, { id: MethodId.BasicRecoverOk, args: {} });
}
