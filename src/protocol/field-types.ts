/**
 * Typed AMQP field values. Every decoded value keeps its wire tag so that a table
 * re-encodes byte-exactly (headers pass through untouched, x-death rewrites keep
 * the original types) and so that headers-exchange matching can compare values by
 * type class as RabbitMQ does (rabbit_misc:type_class: all integers compare as one
 * class, both floats as another).
 *
 * Tags are RabbitMQ's set (the 0-9-1 errata), not the spec's original table:
 *   t bool   b int8   B uint8   s int16   u uint16   I int32   i uint32
 *   l int64  f float32   d float64   D decimal   S longstr   x byte array
 *   A array  T timestamp (u64 seconds)   F nested table   V void
 */
export type FieldValue =
  | { readonly type: 't'; readonly value: boolean }
  | { readonly type: 'b' | 'B' | 's' | 'u' | 'I' | 'i' | 'f' | 'd'; readonly value: number }
  | { readonly type: 'l'; readonly value: bigint }
  | { readonly type: 'T'; readonly value: bigint }
  | { readonly type: 'D'; readonly value: Decimal }
  | { readonly type: 'S' | 'x'; readonly value: Buffer }
  | { readonly type: 'A'; readonly value: readonly FieldValue[] }
  | { readonly type: 'F'; readonly value: FieldTable }
  | { readonly type: 'V'; readonly value: null };

export interface Decimal {
  /** number of decimal places (octet) */
  readonly scale: number;
  /** unscaled value (int32) */
  readonly value: number;
}

/** Insertion order is wire order; a Map keeps it for every key shape. */
export type FieldTable = Map<string, FieldValue>;

export type FieldTag = FieldValue['type'];
