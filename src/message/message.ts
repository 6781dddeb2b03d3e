import type { FieldTable } from '../protocol/field-types.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import { decodeBasicProperties } from '../protocol/generated/properties.js';
import { PropertyFlag, peekHeadersOffset, peekOctet } from './properties-view.js';

/** Who wants to hear that a stored message is settled before its batch is written. */
export interface EarlyConfirm {
  confirmEarly(seq: number): void;
}

/**
 * One published message. Properties stay as the raw content-header bytes the
 * publisher sent and are re-emitted verbatim on delivery; only the fields routing
 * needs are peeked, and a full decode happens at most once, lazily.
 * The same Message is shared by every queue it was routed to.
 */
export class Message {
  readonly persistent: boolean;
  readonly priority: number;
  /** id in the store once a durable queue wrote it (0 = not stored) */
  storeId = 0;
  /** durable queues this persistent message was routed to (set at publish) */
  durableRefs = 0;
  /**
   * Publisher confirm still waiting for the store: the channel to tell and the seq, and
   * how many of the message's stored entries have not yet been cancelled before reaching
   * the disk. A message consumed and acked everywhere before its batch is written is
   * confirmed at once (as RabbitMQ does), instead of waiting for the fsync.
   */
  confirmTo: EarlyConfirm | null = null;
  confirmSeq = 0;
  uncommitted = 0;
  /**
   * Published by basic.publish outside confirm mode and outside a transaction: no one is
   * told when it reaches the disk, so the store need not sync its body (MessageRecord).
   */
  unconfirmed = false;
  private decoded: BasicProperties | undefined;
  private decodedHeaders: FieldTable | null | undefined;

  constructor(
    readonly exchange: string,
    readonly routingKey: string,
    /** property flags + property list, exactly as received */
    readonly rawProperties: Buffer,
    readonly body: Buffer,
  ) {
    const flags = rawProperties.length >= 2 ? rawProperties.readUInt16BE(0) : 0;
    this.persistent = (flags & PropertyFlag.DeliveryMode) !== 0 && peekOctet(rawProperties, PropertyFlag.DeliveryMode) === 2;
    this.priority = (flags & PropertyFlag.Priority) !== 0 ? peekOctet(rawProperties, PropertyFlag.Priority) : 0;
  }

  get bodySize(): number {
    return this.body.length;
  }

  get propertyFlags(): number {
    return this.rawProperties.length >= 2 ? this.rawProperties.readUInt16BE(0) : 0;
  }

  hasProperty(flag: PropertyFlag): boolean {
    return (this.propertyFlags & flag) !== 0;
  }

  /** Full property decode, cached. Not for the hot path. */
  properties(): BasicProperties {
    return (this.decoded ??= decodeBasicProperties(this.rawProperties));
  }

  /** The headers table (for headers exchanges), or undefined when absent or empty. */
  headers(): FieldTable | undefined {
    if (this.decodedHeaders === undefined) {
      // many clients (amqplib) always send a headers table, usually empty: skip the decode then
      this.decodedHeaders = this.rawHeaders() !== null ? (this.properties().headers ?? null) : null;
    }
    return this.decodedHeaders ?? undefined;
  }

  /** The raw bytes of a non-empty headers table (entries only), or null. */
  rawHeaders(): Buffer | null {
    if ((this.propertyFlags & PropertyFlag.Headers) === 0) return null;
    const off = peekHeadersOffset(this.rawProperties);
    if (off < 0 || off + 4 > this.rawProperties.length) return null;
    const len = this.rawProperties.readUInt32BE(off);
    return len === 0 ? null : this.rawProperties.subarray(off + 4, off + 4 + len);
  }
}
