import type { FieldTable } from '../protocol/field-types.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import { decodeBasicProperties } from '../protocol/generated/properties.js';
import { PropertyFlag, peekHeadersOffset, peekOctet } from './properties-view.js';

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

  /** The headers table (for headers exchanges), or undefined when absent. */
  headers(): FieldTable | undefined {
    if (this.decodedHeaders === undefined) {
      this.decodedHeaders = (this.propertyFlags & PropertyFlag.Headers) !== 0 && peekHeadersOffset(this.rawProperties) >= 0
        ? (this.properties().headers ?? null)
        : null;
    }
    return this.decodedHeaders ?? undefined;
  }
}
