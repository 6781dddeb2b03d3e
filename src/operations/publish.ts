import type { ChannelCounters } from '../stats/counters.js';
import { messageDelay } from '../delayed/delayed-message-arguments.js';
import { Message, type EarlyConfirm } from '../message/message.js';
import { peekOctet, PropertyFlag } from '../message/properties-view.js';
import { AmqpChannelError } from '../protocol/errors.js';
import { fieldTypeName } from '../protocol/field-table.js';
import { encodeBasicProperties } from '../protocol/generated/properties.js';
import { ReplyCode } from '../protocol/reply-code.js';
import { Enqueued, type Queue } from '../queue/queue.js';
import type { RouteSet } from '../routing/route-set.js';
import type { Exchange } from '../vhost/exchange.js';
import { Completion } from './completion.js';
import { DIRECT_REPLY_TO, isDirectReplyAddress } from './direct-reply-to.js';
import { checkResource, mayImpersonate, topicPattern, topicRefused } from './permissions.js';
import type { Session } from './session.js';

/** A publisher's side of a publish: where unroutable mandatory messages go, and its reusable route set. */
export interface PublishOutput {
  /** queues routed to by the publish in progress (reused; empty between publishes) */
  readonly routed: RouteSet<Queue>;
  /** the publisher's message statistics (returned, dropped, routed) */
  readonly stats: ChannelCounters;
  /** this publisher's direct reply-to address when it consumes amq.rabbitmq.reply-to, else null */
  readonly directReplyAddress: string | null;
  /** basic.return (mandatory and unroutable) */
  sendReturn(code: ReplyCode, text: string, message: Message): void;
  /**
   * Set by publish when the message went to the store: written to the durable log, or into
   * a queue that is paging (the spill). Such a publisher is held while the store is behind
   * (Core.flow); the caller resets it.
   */
  touchesStore?: boolean;
  /**
   * Set by publish to a queue whose publish credit is used up (Queue.creditExhausted): the
   * caller stops reading its connection until that queue's next delivery pass, and resets it.
   */
  creditQueue?: Queue | null;
  /**
   * The publisher-confirm seq of the publish in progress (0 or absent: no confirm), and who
   * hears when the message turns out to need no commit (EarlyConfirm). Set by the caller
   * before publish, so that the message carries them from its first enqueue: a consumer may
   * take it and settle it (its store operations cancel out) before publish returns.
   */
  confirmSeq?: number;
  confirmTo?: EarlyConfirm;
}

/** A cached publish decision for one exchange name. */
class Permit {
  lastKey: string | null = null;
  constructor(
    readonly exchange: Exchange,
    /** the topic write pattern, or null when no topic permission applies */
    readonly topic: RegExp | null,
  ) {}
}

/** Beyond this many exchange names a channel's permit cache starts over (it is a cache, not a registry). */
const MAX_PERMITS = 64;

/**
 * The publish checks of one channel, cached (the hot path): write permission on the
 * exchange (amq.default for the default exchange), the exchange exists and is not
 * internal, and the topic write permission on the routing key. A decision is kept per
 * exchange name until the permissions change (AccessRegistry.version) or the exchange is
 * deleted; a publish to a known exchange costs a map lookup and an integer compare.
 */
export class PublishPermits {
  private readonly permits = new Map<string, Permit>();
  private version = 0;

  constructor(private readonly session: Session) {}

  /** basic.publish method frame: the exchange to route through, or a 403/404 AmqpChannelError. */
  exchange(name: string, routingKey: string): Exchange {
    const s = this.session;
    const version = s.core.access.version;
    if (version !== this.version) {
      this.permits.clear();
      this.version = version;
    }
    let p = this.permits.get(name);
    if (p === undefined || p.exchange.deleted) p = this.admit(name);
    if (p.topic !== null && p.lastKey !== routingKey) {
      if (!p.topic.test(routingKey)) throw topicRefused(s, p.exchange, routingKey);
      p.lastKey = routingKey;
    }
    return p.exchange;
  }

  private admit(name: string): Permit {
    const s = this.session;
    // rabbit_channel's order: write permission, lookup (404), internal
    checkResource(s, 'exchange', name, 'write');
    const ex = s.vhost.getExchange(name);
    if (ex.options.internal) {
      throw new AmqpChannelError(ReplyCode.AccessRefused, `cannot publish to internal ${s.vhost.describeExchange(ex.name)}`);
    }
    const p = new Permit(ex, topicPattern(s, ex, 'write'));
    if (this.permits.size >= MAX_PERMITS) this.permits.clear();
    this.permits.set(name, p);
    return p;
  }
}

/**
 * The checks RabbitMQ's channel makes on a decoded content header, in its order:
 * user-id must be the authenticated user (unless it has the impersonator tag), expiration
 * must parse, and delivery-mode must be 1 or 2 (rabbit_channel check_user_id_header,
 * check_expiration_header, then rabbit_basic:message_no_id). The properties are known to
 * decode (checked with the header).
 */
export function validateProperties(s: Session, message: Message): void {
  if (message.hasProperty(PropertyFlag.UserId)) {
    const userId = message.properties().userId;
    if (userId !== undefined && userId !== s.user.name && !mayImpersonate(s.user)) {
      throw new AmqpChannelError(
        ReplyCode.PreconditionFailed,
        `user_id property set to '${userId}' but authenticated user was '${s.user.name}'`,
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
 * Routes a complete message (its exchange already admitted by PublishPermits) and enqueues
 * it. Unroutable + mandatory → basic.return 312 NO_ROUTE (before the confirm, as RabbitMQ
 * does). The outcome drives the publisher confirm: Rejected when a queue refused the message
 * (basic.nack), Stored when a durable queue wrote it (ack after the store's batch is
 * durable), Accepted otherwise (ack now). No allocation beyond the message itself.
 */
export function publish(s: Session, exchange: Exchange, message: Message, mandatory: boolean, out: PublishOutput): Enqueued {
  exchange.stats.publishIn++;
  if (message.hasProperty(PropertyFlag.ReplyTo) && message.properties().replyTo === DIRECT_REPLY_TO) {
    message = rewriteReplyTo(out, message);
  }
  // the RPC view: only messages with a correlation id are looked at
  const rpc = message.hasProperty(PropertyFlag.CorrelationId);
  if (rpc && exchange.isDefault) noteReply(s, message);
  if (exchange.isDefault && isDirectReplyAddress(message.routingKey)) {
    if (s.core.directReply.deliver(message.routingKey, message)) out.stats.routed++;
    else if (mandatory) {
      out.stats.returnUnroutable++;
      out.sendReturn(ReplyCode.NoRoute, 'NO_ROUTE', message);
    } else out.stats.dropUnroutable++;
    return Enqueued.Accepted;
  }
  const vhost = s.vhost;
  if (exchange.delayed) {
    // x-delayed-message (Warren extension): a positive x-delay holds the message first
    const delay = messageDelay(message.headers());
    if (delay > 0) return vhost.holdDelayed(exchange, message, delay);
  }
  const routed = out.routed;
  routed.clear(); // empty unless an earlier publish threw half way
  vhost.route(exchange, message, routed);
  // sender-selected distribution: a byte search of the raw headers first, a decode only on a hit
  const rawHeaders = message.rawHeaders();
  if (rawHeaders !== null && (rawHeaders.indexOf(CC_KEY) !== -1 || rawHeaders.indexOf(BCC_KEY) !== -1)) {
    message = routeSenderSelected(s, exchange, message, routed);
  }
  if (routed.size === 0) {
    if (mandatory) {
      out.stats.returnUnroutable++;
      out.sendReturn(ReplyCode.NoRoute, 'NO_ROUTE', message);
    } else out.stats.dropUnroutable++;
    return Enqueued.Accepted;
  }
  exchange.stats.publishOut++;
  out.stats.routed++;
  if (rpc && message.hasProperty(PropertyFlag.ReplyTo)) noteRequest(s, message, routed.get(0).name);
  const n = routed.size;
  if (message.persistent) {
    // the body is stored once; it is freed when the last durable queue lets go of it
    let durable = 0;
    for (let i = 0; i < n; i++) if (routed.get(i).storesPersistent) durable++;
    message.durableRefs = durable;
  }
  let outcome = Enqueued.Accepted;
  let paging = false;
  // a confirmed publish: the message carries its confirm into every queue, with one count
  // held until all are done so that no early confirm can come while it is still being routed
  const seq = out.confirmSeq ?? 0;
  if (seq !== 0 && out.confirmTo !== undefined) {
    message.confirmTo = out.confirmTo;
    message.confirmSeq = seq;
    message.uncommitted = 1;
  }
  for (let i = 0; i < n; i++) {
    const q = routed.get(i);
    const r = q.enqueue(message);
    if (q.creditExhausted) out.creditQueue = q;
    if (r === Enqueued.Rejected) outcome = Enqueued.Rejected;
    else if (r === Enqueued.Stored) {
      paging = true;
      if (outcome === Enqueued.Accepted) outcome = Enqueued.Stored;
    } else if (q.pagedOutCount !== 0) paging = true;
  }
  routed.clear();
  if (paging) out.touchesStore = true;
  if (message.confirmTo !== null && --message.uncommitted === 0) {
    // every store write it made cancelled out already (consumed and settled inside this
    // publish): nothing is waiting for a commit, so it is confirmed as routed
    message.confirmTo = null;
    if (outcome === Enqueued.Stored) outcome = Enqueued.Accepted;
  } else if (outcome !== Enqueued.Stored) message.confirmTo = null;
  return outcome;
}

/** RPC view: a request (reply_to and correlation_id) routed to `queue`. */
function noteRequest(s: Session, message: Message, queue: string): void {
  const p = message.properties();
  if (p.replyTo === undefined || p.correlationId === undefined) return;
  s.core.rpc.request(s.vhost.name, queue, p.replyTo, p.correlationId, Date.now());
}

/** RPC view: a message to the default exchange with a correlation id may answer a request. */
function noteReply(s: Session, message: Message): void {
  const id = message.properties().correlationId;
  if (id !== undefined) s.core.rpc.reply(s.vhost.name, message.routingKey, id, Date.now());
}

/** A request with reply_to = amq.rabbitmq.reply-to: rewrite it to the publisher's own address. */
function rewriteReplyTo(out: PublishOutput, message: Message): Message {
  if (out.directReplyAddress === null) {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'fast reply consumer does not exist', 60, 40);
  }
  const props = { ...message.properties(), replyTo: out.directReplyAddress };
  return new Message(message.exchange, message.routingKey, encodeBasicProperties(props), message.body);
}

/** The encoded table keys (shortstr) of the sender-selected distribution headers. */
const CC_KEY = Buffer.from('\x02CC', 'latin1');
const BCC_KEY = Buffer.from('\x03BCC', 'latin1');

/**
 * Sender-selected distribution (RabbitMQ): CC and BCC headers (arrays of strings) add
 * routing keys; BCC is removed from the message before it is enqueued.
 */
function routeSenderSelected(s: Session, exchange: Exchange, message: Message, routed: RouteSet<Queue>): Message {
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
      s.vhost.route(exchange, new Message(exchange.name, key.value.toString('utf8'), message.rawProperties, message.body), routed);
    }
  }
  if (bcc === undefined) return message;
  const props = { ...message.properties() };
  const stripped = new Map(headers);
  stripped.delete('BCC');
  props.headers = stripped;
  return new Message(message.exchange, message.routingKey, encodeBasicProperties(props), message.body);
}

/** Settles once persistent messages published through `publish` (stored = some were Stored) are durable: tx.commit-ok. */
export function afterStoreCommit(s: Session, stored: boolean): Completion<void> {
  return Completion.of<void>(undefined, stored, s.core.store);
}
