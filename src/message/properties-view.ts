/**
 * Targeted reads of raw basic properties without decoding the whole list.
 * Layout (spec: basic class properties, in order), flag bits from bit 15 down:
 * content-type(s) content-encoding(s) headers(table) delivery-mode(o) priority(o)
 * correlation-id(s) reply-to(s) expiration(s) message-id(s) timestamp(ll) type(s)
 * user-id(s) app-id(s) cluster-id(s). As RabbitMQ reads them, there is one flag word:
 * bits 1 and 0 (the continuation bit) are ignored and the list starts at offset 2.
 */
export enum PropertyFlag {
  ContentType = 1 << 15,
  ContentEncoding = 1 << 14,
  Headers = 1 << 13,
  DeliveryMode = 1 << 12,
  Priority = 1 << 11,
  CorrelationId = 1 << 10,
  ReplyTo = 1 << 9,
  Expiration = 1 << 8,
  MessageId = 1 << 7,
  Timestamp = 1 << 6,
  Type = 1 << 5,
  UserId = 1 << 4,
  AppId = 1 << 3,
  ClusterId = 1 << 2,
}

const LIST_START = 2;

/** Offset of the value for `flag` (which must be set), or -1 when malformed. */
function offsetOf(raw: Buffer, flag: PropertyFlag): number {
  if (raw.length < LIST_START) return -1;
  let off = LIST_START;
  const flags = raw.readUInt16BE(0);
  // walk the properties that precede `flag`
  for (let bit = 15; bit >= 0; bit--) {
    const f = 1 << bit;
    if (f === flag) return off;
    if ((flags & f) === 0) continue;
    if (off >= raw.length) return -1;
    switch (f) {
      case PropertyFlag.Headers:
        if (off + 4 > raw.length) return -1;
        off += 4 + raw.readUInt32BE(off);
        break;
      case PropertyFlag.DeliveryMode:
      case PropertyFlag.Priority:
        off += 1;
        break;
      case PropertyFlag.Timestamp:
        off += 8;
        break;
      default:
        off += 1 + raw[off]!;
    }
  }
  return -1;
}

export function peekOctet(raw: Buffer, flag: PropertyFlag.DeliveryMode | PropertyFlag.Priority): number {
  const off = offsetOf(raw, flag);
  return off >= 0 && off < raw.length ? raw[off]! : 0;
}

export function peekHeadersOffset(raw: Buffer): number {
  return offsetOf(raw, PropertyFlag.Headers);
}
