import type { Logger } from 'pino';
import { AmqpChannelError, AmqpConnectionError } from '../protocol/errors.js';
import { deliverySize, encodeGetOkHead, encodeReturnHead, ShortstrBytes, writeDelivery } from '../protocol/frame-writer.js';
import { FieldTableCheck, MAX_FIELD_NESTING } from '../protocol/field-table.js';
import { erlangBinary } from '../protocol/frame-reader.js';
import { ClassId, FrameType, MethodId, methodName } from '../protocol/generated/constants.js';
import { checkBasicProperties, decodeBasicProperties } from '../protocol/generated/properties.js';
import type { Method } from '../protocol/generated/methods.js';
import { HotMethods } from '../protocol/hot-methods.js';
import { RouteSet } from '../routing/route-set.js';
import { ReplyCode, replyCodeName } from '../protocol/reply-code.js';
import { Message, type EarlyConfirm } from '../message/message.js';
import { Consumer, type ConsumerOwner } from '../queue/consumer.js';
import { Enqueued, type Queue } from '../queue/queue.js';
import type { QueueEntry } from '../queue/queue-entry.js';
import type { Exchange } from '../vhost/exchange.js';
import { cancel } from '../operations/basic.js';
import type { Completion } from '../operations/completion.js';
import type { DirectReplySink } from '../operations/direct-reply-to.js';
import { PublishPermits, publish, validateProperties, type PublishOutput } from '../operations/publish.js';
import type { Session } from '../operations/session.js';
import type { CommitListener } from '../operations/index.js';
import { ChannelCounters } from '../stats/counters.js';
import type { Connection } from './connection.js';
import * as basic from './handlers/basic.js';
import * as confirm from './handlers/confirm.js';
import * as exchange from './handlers/exchange.js';
import * as queue from './handlers/queue.js';
import * as tx from './handlers/tx.js';

/** A delivery awaiting ack. consumer is null for basic.get. */
export class Unacked {
  /** for the consumer timeout */
  readonly deliveredAt = Date.now();
  constructor(
    readonly deliveryTag: number,
    readonly entry: QueueEntry,
    readonly queue: Queue,
    readonly consumer: Consumer | null,
  ) {}
}

/** basic.publish being assembled from its content header and body frames. */
interface PendingPublish {
  exchange: Exchange;
  routingKey: string;
  mandatory: boolean;
  rawProperties: Buffer | null;
  bodySize: number;
  received: number;
}

/** A complete publish held until tx.commit. */
export interface TxPublish {
  readonly exchange: Exchange;
  readonly message: Message;
  readonly mandatory: boolean;
}

/** Why properties that checkBasicProperties refused cannot be decoded (for the log). */
function malformedPropertiesReason(raw: Buffer): string {
  try {
    decodeBasicProperties(raw);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return 'bytes left over after the property list';
}

/** Longer property lists are copied for every message rather than compared. */
const MAX_SHARED_PROPERTIES = 256;
const NO_PROPERTIES = Buffer.alloc(0);
/** what a stored message costs the store besides its body (keys, properties, framing), for flow control */
export const MESSAGE_OVERHEAD = 128;

const enum State {
  Open,
  /** we sent channel.close; discard everything but close / close-ok */
  Closing,
  Closed,
}


/**
 * One channel: content assembly for publishes, deliveries and their acks, prefetch
 * credit, publisher confirms and transactions. Method handlers live in handlers/,
 * one file per AMQP class; this class holds the state they share.
 */
export class Channel implements ConsumerOwner, EarlyConfirm, PublishOutput, DirectReplySink {
  readonly logger: Logger;
  readonly consumers = new Map<string, Consumer>();
  /** deliveryTag → unacked delivery, in tag order (Map keeps insertion order) */
  readonly unacked = new Map<number, Unacked>();
  /** queues routed to by the publish in progress (reused; cleared after each publish) */
  readonly routed = new RouteSet<Queue>();
  /** message statistics (read by the stats tick) */
  readonly stats = new ChannelCounters();

  nextDeliveryTag = 1;
  /** basic.qos global=false: prefetch for consumers created from now on */
  consumerPrefetch = 0;
  /** basic.qos global=true: limit over all consumers of this channel */
  channelPrefetch = 0;
  /** unacked deliveries made to consumers (for the channel-wide prefetch) */
  consumerUnacked = 0;

  confirmMode = false;
  nextPublishSeqNo = 1;
  /** highest publish seq handled (routed; maybe still waiting for the store) */
  private handledUpTo = 0;
  private lastConfirmSent = 0;
  /** seqs written to the store and not yet durable, ascending */
  private readonly awaitingCommit: number[] = [];
  /** this channel's listener on the store's open batch (one per channel per batch) */
  private commitWaiter: CommitWaiter | null = null;

  txMode = false;
  txPublishes: TxPublish[] = [];
  /** acks/rejects taken out of `unacked` inside the current transaction */
  txSettlements: { unacked: Unacked; requeue: boolean | null }[] = [];

  /** spec: the queue most recently declared on this channel (an empty queue name means it) */
  lastDeclaredQueue: string | null = null;
  /** direct reply-to consumer tag on this channel, if any */
  directReplyConsumerTag: string | null = null;
  /** PublishOutput: this channel's direct reply-to address while it has the reply consumer */
  directReplyAddress: string | null = null;
  /** PublishOutput: the publish in progress wrote to the store (flow control) */
  touchesStore = false;
  /** PublishOutput: a queue the publish in progress went to has used up its publish credit */
  creditQueue: Queue | null = null;
  /** PublishOutput: the confirm seq of the publish in progress (0: none) */
  confirmSeq = 0;
  /** PublishOutput: a stored message that needs no commit after all is confirmed here */
  readonly confirmTo: EarlyConfirm = this;
  /** the publish checks of this channel, cached (created with the first publish) */
  private permits: PublishPermits | null = null;

  private state = State.Open;
  private pending: PendingPublish | null = null;
  private assembly: PendingPublish | null = null;
  /** a reply waits for the store: frames for this channel are held, in order, until it is sent */
  paused = false;
  readonly held: import('../protocol/frame-reader.js').Frame[] = [];
  /** basic.publish / ack / nack / reject decoded without allocating (see hot-methods.ts) */
  private hot: HotMethods | null = null;
  /** encoded shortstrs of the last delivery (the next ones usually repeat them) */
  private readonly tagBytes = new ShortstrBytes('basic.deliver consumer-tag');
  private readonly exchangeBytes = new ShortstrBytes('basic.deliver exchange');
  private readonly routingKeyBytes = new ShortstrBytes('basic.deliver routing-key');
  /** the last publish's property bytes, shared by the next publishes that repeat them */
  private lastProperties: Buffer = NO_PROPERTIES;

  constructor(
    readonly id: number,
    readonly conn: Connection,
  ) {
    this.logger = conn.logger.child({ ch: id });
  }

  /** Created with the channel's first method after channel.open (idle channels do without). */
  get hotMethods(): HotMethods {
    return (this.hot ??= new HotMethods());
  }

  /** the connection's user in its vhost: every operation is called with it */
  get session(): Session {
    return this.conn.session;
  }

  get vhost() {
    return this.conn.session.vhost;
  }

  // ---- inbound --------------------------------------------------------------------------------

  handleMethod(method: Method): void {
    if (this.state !== State.Open) {
      // spec: after channel.close, discard everything until close-ok
      if (method.id === MethodId.ChannelCloseOk) this.finishClosing();
      else if (method.id === MethodId.ChannelClose) {
        this.conn.send(this.id, { id: MethodId.ChannelCloseOk, args: {} });
      }
      return;
    }
    if (this.pending !== null) {
      // RabbitMQ's command assembler names the publish whose content was interrupted
      throw new AmqpConnectionError(
        ReplyCode.UnexpectedFrame,
        this.pending.rawProperties === null
          ? 'expected content header for class 60, got non content header frame instead'
          : 'expected content body, got non content body frame instead',
        60,
        40,
      );
    }
    switch (method.id) {
      case MethodId.ChannelOpen:
        throw new AmqpConnectionError(ReplyCode.ChannelError, 'second \'channel.open\' seen', 20, 10);
      case MethodId.ChannelClose:
        this.release();
        this.conn.send(this.id, { id: MethodId.ChannelCloseOk, args: {} });
        this.state = State.Closed;
        this.conn.channelClosed(this);
        return;
      case MethodId.ChannelCloseOk:
        return;
      case MethodId.ChannelFlow:
        // RabbitMQ: active=false (flow control by the client) is not supported
        if (!method.args.active) throw new AmqpConnectionError(ReplyCode.NotImplemented, 'active=false', 20, 20);
        this.conn.send(this.id, { id: MethodId.ChannelFlowOk, args: { active: true } });
        return;
      case MethodId.ChannelFlowOk:
        return;
      case MethodId.ExchangeDeclare:
        return exchange.handleExchangeDeclare(this, method.args);
      case MethodId.ExchangeDelete:
        return exchange.handleExchangeDelete(this, method.args);
      case MethodId.ExchangeBind:
        return exchange.handleExchangeBind(this, method.args);
      case MethodId.ExchangeUnbind:
        return exchange.handleExchangeUnbind(this, method.args);
      case MethodId.QueueDeclare:
        return queue.handleQueueDeclare(this, method.args);
      case MethodId.QueueBind:
        return queue.handleQueueBind(this, method.args);
      case MethodId.QueueUnbind:
        return queue.handleQueueUnbind(this, method.args);
      case MethodId.QueuePurge:
        return queue.handleQueuePurge(this, method.args);
      case MethodId.QueueDelete:
        return queue.handleQueueDelete(this, method.args);
      case MethodId.BasicQos:
        return basic.handleBasicQos(this, method.args);
      case MethodId.BasicConsume:
        return basic.handleBasicConsume(this, method.args);
      case MethodId.BasicCancel:
        return basic.handleBasicCancel(this, method.args);
      case MethodId.BasicPublish: {
        this.conn.notePublish();
        if (method.args.immediate) {
          // RabbitMQ 3.0+: immediate is not supported
          throw new AmqpConnectionError(ReplyCode.NotImplemented, 'immediate=true', 60, 40);
        }
        const ex = (this.permits ??= new PublishPermits(this.session)).exchange(method.args.exchange, method.args.routingKey);
        // one assembly object per channel, reused for every publish (no allocation per message)
        const p = (this.assembly ??= { exchange: ex, routingKey: '', mandatory: false, rawProperties: null, bodySize: 0, received: 0 });
        p.exchange = ex;
        p.routingKey = method.args.routingKey;
        p.mandatory = method.args.mandatory;
        p.rawProperties = null;
        p.bodySize = 0;
        p.received = 0;
        this.bodyParts.length = 0; // a publish abandoned half way (channel error) leaves none behind
        this.pending = p;
        return;
      }
      case MethodId.BasicGet:
        return basic.handleBasicGet(this, method.args);
      case MethodId.BasicAck:
        return this.settle(method.args.deliveryTag, method.args.multiple, null);
      case MethodId.BasicReject:
        return this.settle(method.args.deliveryTag, false, method.args.requeue);
      case MethodId.BasicNack:
        return this.settle(method.args.deliveryTag, method.args.multiple, method.args.requeue);
      case MethodId.BasicRecoverAsync:
        return basic.handleBasicRecover(this, method.args.requeue, false);
      case MethodId.BasicRecover:
        return basic.handleBasicRecover(this, method.args.requeue, true);
      case MethodId.ConfirmSelect:
        return confirm.handleConfirmSelect(this, method.args);
      case MethodId.TxSelect:
        return tx.handleTxSelect(this);
      case MethodId.TxCommit:
        return tx.handleTxCommit(this);
      case MethodId.TxRollback:
        return tx.handleTxRollback(this);
      default:
        throw new AmqpConnectionError(
          ReplyCode.CommandInvalid,
          `unexpected method '${methodName(method.id)}' on a channel`,
          method.id >>> 16,
          method.id & 0xffff,
        );
    }
  }

  /**
   * The content header in buf[start, end). Checked as RabbitMQ checks it (frame parser,
   * command assembler, then the channel's max_message_size and property decode), so that
   * every message that gets further has properties that decode: nothing later (TTL
   * timers, dead-lettering, recovery, delivery) meets bytes it cannot read.
   */
  handleContentHeader(buf: Buffer, start: number, end: number): void {
    if (end - start < 12) {
      // RabbitMQ's frame parser cannot even read class, weight and body size
      throw new AmqpConnectionError(ReplyCode.FrameError, `type 2, all octets = ${erlangBinary(buf.subarray(start, end))}: unknown_frame`);
    }
    if (this.state !== State.Open) return;
    const p = this.pending;
    if (p === null || p.rawProperties !== null) {
      throw new AmqpConnectionError(
        ReplyCode.UnexpectedFrame,
        p === null ? 'expected method frame, got non method frame instead' : 'expected content body, got content header instead',
      );
    }
    const classId = buf.readUInt16BE(start);
    if (buf.readUInt16BE(start + 2) !== 0) {
      // weight must be zero: RabbitMQ's assembler does not take it for a content header
      throw new AmqpConnectionError(ReplyCode.UnexpectedFrame, 'expected content header for class 60, got non content header frame instead', 60, 40);
    }
    if (classId !== ClassId.Basic) {
      throw new AmqpConnectionError(ReplyCode.UnexpectedFrame, `expected content header for class 60, got one for class ${classId} instead`, 60, 40);
    }
    const hi = buf.readUInt32BE(start + 4);
    const bodySize = hi * 0x1_0000_0000 + buf.readUInt32BE(start + 8);
    const max = this.conn.broker.config.maxMessageSize;
    if (bodySize > max) {
      this.pending = null;
      this.skipBody = bodySize;
      throw new AmqpChannelError(
        ReplyCode.PreconditionFailed,
        `message size ${bodySize} is larger than configured max size ${max}`,
        60,
        40,
      );
    }
    p.rawProperties = this.propertiesOf(buf, start + 12, end);
    p.bodySize = bodySize;
    if (bodySize === 0) this.completePublish(Buffer.alloc(0));
  }

  /**
   * The property bytes buf[start, end) as a Buffer the message can keep (the socket
   * chunk must not be pinned), once they are known to decode. Publishers mostly repeat
   * the same properties, so when the bytes equal the previous message's, that (read-only,
   * shared, already checked) Buffer is reused: the check runs once per distinct header.
   */
  private propertiesOf(buf: Buffer, start: number, end: number): Buffer {
    const last = this.lastProperties;
    const len = end - start;
    if (last.length === len && last !== NO_PROPERTIES) {
      let i = 0;
      while (i < len && last[i] === buf[start + i]) i++;
      if (i === len) return last;
    }
    const check = checkBasicProperties(buf, start, end);
    if (check !== FieldTableCheck.Ok) this.refuseProperties(check, buf.subarray(start, end));
    const raw = Buffer.allocUnsafe(len);
    buf.copy(raw, 0, start, end);
    // long property lists (big headers tables) are not worth comparing byte by byte
    if (len <= MAX_SHARED_PROPERTIES) this.lastProperties = raw;
    return raw;
  }

  /**
   * Properties that do not decode. RabbitMQ's channel crashes on them and the connection
   * is closed with 541 and the bare text INTERNAL_ERROR (observed on 3.10); tables nested
   * past MAX_FIELD_NESTING decode on RabbitMQ, and are refused here as an invalid message.
   */
  private refuseProperties(check: FieldTableCheck, raw: Buffer): never {
    this.pending = null;
    if (check === FieldTableCheck.TooDeep) {
      throw new AmqpChannelError(
        ReplyCode.PreconditionFailed,
        `invalid message: field tables nested deeper than ${MAX_FIELD_NESTING} levels in the properties`,
        60,
        40,
      );
    }
    this.logger.warn({ reason: malformedPropertiesReason(raw), bytes: raw.length }, 'content header refused: its properties cannot be decoded');
    throw new AmqpConnectionError(ReplyCode.InternalError, '');
  }

  /** bytes of an oversized body still to discard after its channel error */
  private skipBody = 0;

  /**
   * A content body frame: buf[start, end); `owned`: buf is this payload alone, free to keep.
   * Memory follows what has arrived, never the declared body size: a body in one frame is
   * kept as that frame (adopted when the reader already copied it out of the socket
   * chunks), a longer one as its frames, joined once the last one is in.
   */
  handleContentBody(buf: Buffer, start: number, end: number, owned = false): void {
    if (this.state !== State.Open) return;
    const p = this.pending;
    if (p === null || p.rawProperties === null) {
      if (this.skipBody > 0) {
        this.skipBody -= end - start;
        return;
      }
      throw new AmqpConnectionError(
        ReplyCode.UnexpectedFrame,
        p === null ? 'expected method frame, got non method frame instead' : 'expected content header, got content body instead',
      );
    }
    const remaining = p.bodySize - p.received;
    const len = end - start;
    if (len > remaining) {
      throw new AmqpConnectionError(
        ReplyCode.FrameError,
        `content body frame of ${len} bytes exceeds the ${remaining} bytes remaining`,
      );
    }
    // copy into message-owned memory unless the reader's copy is ours (a view would pin the socket chunk)
    let part: Buffer;
    if (owned) part = buf;
    else {
      part = Buffer.allocUnsafe(len);
      buf.copy(part, 0, start, end);
    }
    p.received += len;
    if (p.received === p.bodySize && this.bodyParts.length === 0) {
      this.completePublish(part); // the whole body in one frame
      return;
    }
    this.bodyParts.push(part);
    if (p.received === p.bodySize) {
      const body = Buffer.concat(this.bodyParts, p.bodySize);
      this.bodyParts.length = 0;
      this.completePublish(body);
    }
  }

  /** Flow control: a queue's publish credit ran out; the connection waits for its next delivery pass. */
  waitForCredit(): void {
    const q = this.creditQueue!;
    this.creditQueue = null;
    this.conn.enterQueueFlow(q);
  }

  /** frames of the multi-frame body being assembled (reused; emptied when it completes) */
  private readonly bodyParts: Buffer[] = [];

  private completePublish(body: Buffer): void {
    const p = this.pending!;
    this.pending = null;
    const message = new Message(p.exchange.name, p.routingKey, p.rawProperties!, body);
    validateProperties(this.session, message);
    this.stats.publish++;
    if (this.txMode) {
      this.txPublishes.push({ exchange: p.exchange, message, mandatory: p.mandatory });
      return;
    }
    const seq = this.confirmMode ? this.nextPublishSeqNo++ : 0;
    if (seq === 0) message.unconfirmed = true;
    this.touchesStore = false;
    this.confirmSeq = seq;
    const outcome = publish(this.session, p.exchange, message, p.mandatory, this);
    this.confirmSeq = 0;
    // the store is behind what it was handed: this connection is not read until it catches up
    if (this.touchesStore && this.conn.broker.core.flow.saturated) this.conn.enterFlow(body.length + MESSAGE_OVERHEAD);
    // a queue's publish credit is used up: this connection is not read until its next delivery pass
    if (this.creditQueue !== null) this.waitForCredit();
    if (seq !== 0) {
      this.stats.publishConfirm++;
      if (outcome === Enqueued.Accepted) this.confirm(seq);
      // Stored: publish left its store operations in the open batch (and wired its early confirm)
      else if (outcome === Enqueued.Stored) this.confirmAfterCommit(seq);
      else this.nackPublish(seq);
    }
  }

  /**
   * Runs `then` with an operation's result once it is final: at once, or, when the operation
   * waits for the store (an -ok means the change survives a crash) or a page-in, later;
   * meanwhile the channel's later frames are held so replies stay in order.
   */
  afterOperation<T>(completion: Completion<T>, then: (value: T) => void): void {
    if (completion.settled) {
      then(completion.value);
      return;
    }
    this.paused = true;
    completion.onSettled((error, value) => {
      // a store callback or a promise continuation: nothing may escape it
      try {
        if (this.state !== State.Open) return;
        this.paused = false;
        try {
          if (error !== null) {
            throw error instanceof AmqpChannelError || error instanceof AmqpConnectionError
              ? error
              : new AmqpConnectionError(ReplyCode.InternalError, error instanceof Error ? error.message : String(error));
          }
          then(value as T);
        } catch (err) {
          this.conn.handleError(err, this.id);
        }
        if (!this.paused) this.conn.resumeChannel(this);
      } catch (err) {
        this.conn.internalFailure(err, 'deferred reply');
      }
    });
  }

  /** An operation's reply: sent once the operation is final (see afterOperation). */
  reply<T>(completion: Completion<T>, method: (value: T) => Method): void {
    this.afterOperation(completion, (v) => this.conn.send(this.id, method(v)));
  }

  // ---- publisher confirms ----------------------------------------------------------------------
  //
  // Seqs are handled in order; a seq is "settled" once routed (transient) or once the
  // store batch holding it is durable (persistent → durable queue). The ack point is the
  // highest seq below the oldest one still waiting for the store, so one
  // basic.ack multiple=true covers everything before it.

  /** A publish was handled and needs no further wait. */
  confirm(seq: number): void {
    if (seq > this.handledUpTo) this.handledUpTo = seq;
    this.conn.pendingConfirms.add(this);
  }

  /** A publish was written to the store: it is confirmed when the current batch commits. */
  confirmAfterCommit(seq: number): void {
    if (seq > this.handledUpTo) this.handledUpTo = seq;
    this.awaitingCommit.push(seq);
    const commits = this.conn.broker.core.commits;
    if (this.commitWaiter === null || this.commitWaiter.done || this.commitWaiter.batchId !== commits.openBatchId) {
      this.commitWaiter = new CommitWaiter(this, commits.openBatchId);
      commits.afterCommit(this.commitWaiter);
    }
    this.commitWaiter.upTo = seq;
  }

  /**
   * EarlyConfirm: a stored message was consumed and settled in every durable queue before
   * its batch reached the disk; it needs no fsync (RabbitMQ confirms such messages too).
   */
  confirmEarly(seq: number): void {
    if (this.state !== State.Open) return;
    const waiting = this.awaitingCommit;
    // seqs are ascending: binary search
    let lo = 0;
    let hi = waiting.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (waiting[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    if (waiting[lo] !== seq) return;
    waiting.splice(lo, 1);
    if (!this.confirmFlushScheduled) {
      this.confirmFlushScheduled = true;
      process.nextTick(flushConfirmsSoon, this);
    }
  }

  /** published in confirm mode and not yet confirmed (or nacked) */
  get unconfirmedCount(): number {
    return this.confirmMode ? this.nextPublishSeqNo - 1 - this.lastConfirmSent : 0;
  }

  /** open (not closing) */
  get isOpen(): boolean {
    return this.state === State.Open;
  }

  /** for flushConfirmsSoon */
  confirmFlushScheduled = false;

  /** The store batch holding seqs up to `upTo` is durable (or failed: those publishes are nacked). */
  batchCommitted(upTo: number, error: Error | null): void {
    if (this.state !== State.Open) return;
    const waiting = this.awaitingCommit;
    let n = 0;
    while (n < waiting.length && waiting[n]! <= upTo) n++;
    const done = waiting.splice(0, n);
    if (error !== null) {
      this.logger.warn({ err: error, count: done.length }, 'store write failed; nacking publishes');
      for (const seq of done) this.nackPublish(seq);
    }
    this.flushConfirms();
  }

  /** A queue refused the message (or the store failed): earlier confirms go out first, then basic.nack. */
  nackPublish(seq: number): void {
    if (seq > this.handledUpTo) this.handledUpTo = seq;
    this.flushConfirms(seq - 1);
    // a later multiple ack may cover this tag: clients ignore tags already settled
    if (this.lastConfirmSent === seq - 1) this.lastConfirmSent = seq;
    this.conn.send(this.id, { id: MethodId.BasicNack, args: { deliveryTag: seq, multiple: false, requeue: false } });
  }

  /** One basic.ack per channel per read batch / store batch: multiple=true covers every earlier seq. */
  flushConfirms(limit = Infinity): void {
    if (this.state !== State.Open) return;
    let upTo = this.awaitingCommit.length !== 0 ? this.awaitingCommit[0]! - 1 : this.handledUpTo;
    if (upTo > limit) upTo = limit;
    if (upTo <= this.lastConfirmSent) return;
    const multiple = upTo - this.lastConfirmSent > 1;
    this.stats.confirm += upTo - this.lastConfirmSent;
    this.lastConfirmSent = upTo;
    this.conn.send(this.id, { id: MethodId.BasicAck, args: { deliveryTag: upTo, multiple } });
  }

  // ---- deliveries (ConsumerOwner) ---------------------------------------------------------------

  canDeliver(consumer: Consumer): boolean {
    if (this.state !== State.Open || !this.conn.out.writable) return false;
    if (consumer.noAck) return true;
    return (
      (consumer.prefetchCount === 0 || consumer.unacked < consumer.prefetchCount) &&
      (this.channelPrefetch === 0 || this.consumerUnacked < this.channelPrefetch)
    );
  }

  deliver(consumer: Consumer, queue: Queue, entry: QueueEntry): void {
    const tag = this.nextDeliveryTag++;
    const stats = this.stats;
    const qStats = queue.stats;
    if (!consumer.noAck) {
      this.unacked.set(tag, new Unacked(tag, entry, queue, consumer));
      this.consumerUnacked++;
      stats.deliver++;
      qStats.deliver++;
    } else {
      stats.deliverNoAck++;
      qStats.deliverNoAck++;
    }
    if (entry.redelivered) {
      stats.redeliver++;
      qStats.redeliver++;
    }
    this.writeDeliver(consumer.tag, tag, entry.redelivered, queue.deliveredMessage(entry, false));
  }

  /**
   * basic.deliver + content, encoded straight into the connection's outbound slab; a
   * small body goes in the same run of bytes, a larger one is written as views of itself.
   */
  private writeDeliver(consumerTag: string, deliveryTag: number, redelivered: boolean, m: Message): void {
    const body = m.body;
    const out = this.conn.out;
    const tag = this.tagBytes.of(consumerTag);
    const ex = this.exchangeBytes.of(m.exchange);
    const rk = this.routingKeyBytes.of(m.routingKey);
    const inline = body.length <= INLINE_BODY_MAX && body.length <= this.conn.frameMax - 8;
    const buf = out.reserve(deliverySize(tag, ex, rk, m.rawProperties, inline ? body.length : 0));
    out.commit(writeDelivery(buf, out.offset, this.id, tag, deliveryTag, redelivered, ex, rk, m.rawProperties, body.length, inline ? body : null));
    if (!inline) this.writeBody(body);
  }

  /** direct reply-to: a reply goes straight to this channel's no-ack reply consumer. */
  deliverDirectReply(m: Message): void {
    if (this.state !== State.Open || this.directReplyConsumerTag === null) return;
    this.stats.deliverNoAck++;
    this.writeDeliver(this.directReplyConsumerTag, this.nextDeliveryTag++, false, m);
  }

  /** basic.get-ok + content; the delivery is unacked unless noAck. */
  deliverGetOk(queue: Queue, entry: QueueEntry, noAck: boolean): void {
    const tag = this.nextDeliveryTag++;
    if (!noAck) {
      this.unacked.set(tag, new Unacked(tag, entry, queue, null));
      queue.unackedCount++;
      queue.markDelivered(entry);
      this.stats.get++;
      queue.stats.get++;
    } else {
      queue.discard(entry);
      this.stats.getNoAck++;
      queue.stats.getNoAck++;
    }
    if (entry.redelivered) {
      this.stats.redeliver++;
      queue.stats.redeliver++;
    }
    const m = queue.deliveredMessage(entry, true);
    this.conn.out.write(
      encodeGetOkHead(this.id, tag, entry.redelivered, m.exchange, m.routingKey, queue.messageCount, m.rawProperties, m.bodySize),
    );
    this.writeBody(m.body);
  }

  /** basic.return + content (mandatory and unroutable). */
  sendReturn(code: ReplyCode, text: string, message: Message): void {
    this.conn.out.write(
      encodeReturnHead(this.id, code, text, message.exchange, message.routingKey, message.rawProperties, message.bodySize),
    );
    this.writeBody(message.body);
  }

  /** Body frames: header and end octet around a view of the body, split at frame_max. */
  private writeBody(body: Buffer): void {
    const max = this.conn.frameMax - 8;
    const out = this.conn.out;
    for (let off = 0; off < body.length; off += max) {
      const len = Math.min(max, body.length - off);
      if (len <= INLINE_BODY_MAX) {
        // small: copied into the slab (cheaper than three writes)
        const frame = out.reserve(len + 8);
        const o = out.offset;
        frame[o] = FrameType.Body;
        frame.writeUInt16BE(this.id, o + 1);
        frame.writeUInt32BE(len, o + 3);
        body.copy(frame, o + 7, off, off + len);
        frame[o + len + 7] = 0xce;
        out.commit(o + len + 8);
      } else {
        // large: the frame header goes in the slab (after the delivery head), the body as
        // a view of itself, the end octet in the slab before what comes next
        const head = out.reserve(7);
        const o = out.offset;
        head[o] = FrameType.Body;
        head.writeUInt16BE(this.id, o + 1);
        head.writeUInt32BE(len, o + 3);
        out.commit(o + 7);
        out.write(body.subarray(off, off + len));
        const end = out.reserve(1);
        end[out.offset] = 0xce;
        out.commit(out.offset + 1);
      }
    }
  }

  /** The queue of this consumer was deleted: spec consumer_cancel_notify → basic.cancel from the server. */
  consumerCancelled(consumer: Consumer): void {
    if (this.consumers.get(consumer.tag) !== consumer) return;
    this.consumers.delete(consumer.tag);
    if (this.state === State.Open && this.conn.consumerCancelNotify) {
      this.conn.send(this.id, { id: MethodId.BasicCancel, args: { consumerTag: consumer.tag, noWait: false } });
    }
  }

  /** Credit may have appeared for every consumer of this channel. */
  resumeDeliveries(): void {
    for (const c of this.consumers.values()) c.queue.scheduleDelivery();
  }

  // ---- acks -----------------------------------------------------------------------------------

  /**
   * basic.ack (requeue === null), basic.reject and basic.nack. spec: an unknown or
   * already-settled delivery tag → 406 PRECONDITION_FAILED; multiple with tag 0 = all.
   */
  settle(deliveryTag: number, multiple: boolean, requeue: boolean | null): void {
    if (!multiple && !this.txMode) {
      // the common case: one delivery, no allocation
      const u = this.unacked.get(deliveryTag);
      if (u === undefined) this.unknownTag(deliveryTag);
      this.unacked.delete(deliveryTag);
      this.settleOne(u, requeue);
      u.queue.scheduleDelivery();
      if (this.channelPrefetch !== 0) this.resumeDeliveries();
      return;
    }
    const settled: Unacked[] = [];
    if (multiple) {
      if (deliveryTag !== 0 && !this.unacked.has(deliveryTag)) this.unknownTag(deliveryTag);
      for (const [tag, u] of this.unacked) {
        if (deliveryTag !== 0 && tag > deliveryTag) break;
        settled.push(u);
        this.unacked.delete(tag);
      }
    } else {
      const u = this.unacked.get(deliveryTag);
      if (u === undefined) this.unknownTag(deliveryTag);
      this.unacked.delete(deliveryTag);
      settled.push(u);
    }
    if (this.txMode) {
      for (const u of settled) this.txSettlements.push({ unacked: u, requeue });
      return;
    }
    this.applySettlements(settled, requeue);
  }

  private unknownTag(tag: number): never {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, `unknown delivery tag ${tag}`);
  }

  applySettlements(settled: readonly Unacked[], requeue: boolean | null): void {
    let last: Queue | null = null;
    for (const u of settled) {
      this.settleOne(u, requeue);
      // credit returned: the queue delivers again (scheduling twice is a no-op)
      if (u.queue !== last) u.queue.scheduleDelivery();
      last = u.queue;
    }
    if (this.channelPrefetch !== 0) this.resumeDeliveries();
  }

  private settleOne(u: Unacked, requeue: boolean | null): void {
    if (u.consumer !== null) this.consumerUnacked--;
    u.queue.settled(u.consumer);
    if (requeue === true) {
      this.stats.reject++;
      u.queue.requeue(u.entry);
    } else if (requeue === false) {
      this.stats.reject++;
      u.queue.drop(u.entry, 'rejected'); // reject/nack: dead-lettered when configured
    } else {
      this.stats.ack++;
      u.queue.stats.ack++;
      u.queue.discard(u.entry);
    }
  }

  /** tx.rollback: deliveries settled inside the transaction are unacked again, in tag order. */
  restoreUnacked(list: readonly Unacked[]): void {
    if (list.length === 0) return;
    const all = [...this.unacked.values(), ...list].sort((a, b) => a.deliveryTag - b.deliveryTag);
    this.unacked.clear();
    for (const u of all) this.unacked.set(u.deliveryTag, u);
  }

  /** Puts every unacked delivery back on its queue, marked redelivered (close, recover). */
  requeueAllUnacked(): void {
    if (this.unacked.size === 0) return;
    const all = [...this.unacked.values()];
    this.unacked.clear();
    this.applySettlements(all, true);
  }

  // ---- consumers ------------------------------------------------------------------------------

  /** direct reply-to: this channel consumes amq.rabbitmq.reply-to (no-ack, one per channel) */
  startDirectReply(tag: string): void {
    this.directReplyConsumerTag = tag;
    this.directReplyAddress = this.session.core.directReply.register(this);
  }

  stopDirectReply(): void {
    if (this.directReplyAddress !== null) this.session.core.directReply.unregister(this.directReplyAddress);
    this.directReplyAddress = null;
    this.directReplyConsumerTag = null;
  }

  removeConsumer(tag: string): Consumer | undefined {
    const c = this.consumers.get(tag);
    if (c === undefined) return undefined;
    this.consumers.delete(tag);
    cancel(c);
    return c;
  }

  // ---- closing --------------------------------------------------------------------------------

  /** A channel-level error: release resources, send channel.close, discard until close-ok. */
  fail(err: AmqpChannelError): void {
    if (this.state !== State.Open) return;
    this.logger.debug({ code: err.replyCode, text: err.replyText }, 'channel error');
    this.release();
    this.state = State.Closing;
    this.pending = null;
    this.conn.send(this.id, {
      id: MethodId.ChannelClose,
      args: {
        replyCode: err.replyCode,
        replyText: `${replyCodeName(err.replyCode)} - ${err.replyText}`,
        classId: err.classId,
        methodId: err.methodId,
      },
    });
  }

  private finishClosing(): void {
    this.state = State.Closed;
    this.conn.channelClosed(this);
  }

  /**
   * RabbitMQ's consumer_timeout: when the oldest unacked delivery is older than the
   * limit (the queue's x-consumer-timeout, else the broker's), the channel is closed
   * with 406 and the delivery goes back to its queue.
   */
  checkConsumerTimeout(now: number, brokerTimeout: number): void {
    if (this.state !== State.Open) return;
    for (const u of this.unacked.values()) {
      const limit = u.queue.limits.consumerTimeout ?? brokerTimeout;
      if (limit > 0 && now - u.deliveredAt > limit) {
        this.fail(
          new AmqpChannelError(
            ReplyCode.PreconditionFailed,
            `delivery acknowledgement on channel ${this.id} timed out. Timeout value used: ${limit} ms. This timeout value can be configured, see consumers doc guide to learn more`,
          ),
        );
        return;
      }
    }
  }

  /** Cancels consumers and requeues unacked deliveries (channel or connection closing). */
  release(): void {
    if (this.state === State.Closed) return;
    this.pending = null;
    this.bodyParts.length = 0;
    this.txPublishes = [];
    // acks/rejects inside an uncommitted transaction never happened: those deliveries go back too
    this.restoreUnacked(this.txSettlements.map((s) => s.unacked));
    this.txSettlements = [];
    for (const tag of [...this.consumers.keys()]) this.removeConsumer(tag);
    this.stopDirectReply();
    this.requeueAllUnacked();
    if (this.state === State.Open) this.state = State.Closing;
  }
}


/** One basic.ack for every early confirm of a tick. */
function flushConfirmsSoon(ch: Channel): void {
  ch.confirmFlushScheduled = false;
  try {
    ch.flushConfirms();
  } catch (err) {
    ch.conn.internalFailure(err, 'early confirms');
  }
}
/** bodies up to this size are copied into the delivery's buffer (cheaper than separate writes) */
const INLINE_BODY_MAX = 4096;

/** Listens on one store batch for one channel; `upTo` is the channel's highest seq in that batch. */
class CommitWaiter implements CommitListener {
  upTo = 0;
  /** it has been told: a later seq needs a waiter of its own */
  done = false;
  constructor(
    private readonly channel: Channel,
    readonly batchId: number,
  ) {}
  batchCommitted(error: Error | null): void {
    this.done = true;
    try {
      this.channel.batchCommitted(this.upTo, error);
    } catch (err) {
      this.channel.conn.internalFailure(err, 'publisher confirms');
    }
  }
}
