import { AmqpChannelError } from '../protocol/errors.js';
import { fieldTypeName, fieldValuesEqual } from '../protocol/field-table.js';
import type { FieldTable, FieldValue } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';

/*
 * Headers exchange matching, as RabbitMQ 3.13+/4.x does it (rabbit_exchange_type_headers
 * over mc_amqpl:routing_headers):
 * - x-match: all (default, also for a missing value) | any | all-with-x | any-with-x.
 * - all/any skip every binding key starting with "x-"; the -with-x variants skip only
 *   "x-match" itself and compare the other x- keys against the message's x- headers.
 * - a binding value of type void means "header present" (any value, any type).
 * - otherwise the header value must equal the binding value with Erlang `=:=` on the
 *   decoded terms, i.e. by type class: all integer tags (b B s u I i l T) are one class
 *   compared by value, f/d one class (1 never equals 1.0), S and x are both binaries,
 *   t booleans, D {scale, value}; arrays and tables compare exactly, tags included.
 * - RabbitMQ turns a message *header* timestamp into milliseconds before matching
 *   (routing_value(timestamp, V) -> V * 1000) but not the binding value, so header T=5
 *   matches binding 5000 (int or T) and not binding T=5. Reproduced on purpose.
 * - all with no comparable keys matches everything; any with none matches nothing.
 */

const enum MatchKind {
  Present,
  Integer,
  Float,
  Binary,
  Bool,
  Decimal,
  Exact,
}

interface HeadersCondition {
  readonly key: string;
  readonly kind: MatchKind;
  /** Integer: number | bigint; Float: number; Binary: Buffer; Bool: boolean; Decimal/Exact: the FieldValue */
  readonly value: unknown;
  /** Integer only: the header timestamp (seconds) that equals this value in ms, or null when none does */
  readonly timestampSeconds: bigint | null;
}

/** A binding's arguments compiled at bind time into a headers matcher. */
export class HeadersMatch {
  readonly #any: boolean;
  readonly #conditions: readonly HeadersCondition[];

  constructor(args: FieldTable) {
    const xMatch = args.get('x-match');
    // RabbitMQ parse: anything but these exact longstrs is "all" (validation rejects the rest)
    const mode = xMatch?.type === 'S' ? xMatch.value.toString('latin1') : 'all';
    const withX = mode === 'all-with-x' || mode === 'any-with-x';
    this.#any = mode === 'any' || mode === 'any-with-x';
    const conditions: HeadersCondition[] = [];
    for (const [key, value] of args) {
      if (key === 'x-match') continue;
      if (!withX && key.startsWith('x-')) continue;
      conditions.push(compileCondition(key, value));
    }
    this.#conditions = conditions;
  }

  matches(headers: FieldTable | undefined): boolean {
    const conditions = this.#conditions;
    if (this.#any) {
      if (headers === undefined) return false;
      for (let i = 0; i < conditions.length; i++) {
        if (conditionMatches(conditions[i]!, headers)) return true;
      }
      return false;
    }
    if (conditions.length === 0) return true;
    if (headers === undefined) return false;
    for (let i = 0; i < conditions.length; i++) {
      if (!conditionMatches(conditions[i]!, headers)) return false;
    }
    return true;
  }
}

/**
 * RabbitMQ validate_binding: x-match, when present, must be a longstr naming one of the
 * four modes; anything else fails the bind with 406.
 */
export function validateHeadersBindingArgs(args: FieldTable): void {
  const xMatch = args.get('x-match');
  if (xMatch === undefined) return;
  if (xMatch.type === 'S') {
    const mode = xMatch.value.toString('latin1');
    if (mode === 'all' || mode === 'any' || mode === 'all-with-x' || mode === 'any-with-x') return;
    throw new AmqpChannelError(
      ReplyCode.PreconditionFailed,
      `Invalid x-match field value ${erlangTerm(xMatch)}; expected all, any, all-with-x, or any-with-x`,
    );
  }
  throw new AmqpChannelError(
    ReplyCode.PreconditionFailed,
    `Invalid x-match field type ${fieldTypeName(xMatch.type)} (value ${erlangTerm(xMatch)}); expected longstr`,
  );
}

function compileCondition(key: string, v: FieldValue): HeadersCondition {
  switch (v.type) {
    case 'V':
      return { key, kind: MatchKind.Present, value: null, timestampSeconds: null };
    case 'b':
    case 'B':
    case 's':
    case 'u':
    case 'I':
    case 'i':
      return { key, kind: MatchKind.Integer, value: v.value, timestampSeconds: msToSeconds(BigInt(v.value)) };
    case 'l':
    case 'T':
      return { key, kind: MatchKind.Integer, value: v.value, timestampSeconds: msToSeconds(v.value) };
    case 'f':
    case 'd':
      return { key, kind: MatchKind.Float, value: v.value, timestampSeconds: null };
    case 'S':
    case 'x':
      return { key, kind: MatchKind.Binary, value: v.value, timestampSeconds: null };
    case 't':
      return { key, kind: MatchKind.Bool, value: v.value, timestampSeconds: null };
    case 'D':
      return { key, kind: MatchKind.Decimal, value: v, timestampSeconds: null };
    case 'A':
    case 'F':
      return { key, kind: MatchKind.Exact, value: v, timestampSeconds: null };
  }
}

function msToSeconds(ms: bigint): bigint | null {
  // header timestamps are u64 seconds; only non-negative whole seconds can match
  return ms >= 0n && ms % 1000n === 0n ? ms / 1000n : null;
}

function conditionMatches(c: HeadersCondition, headers: FieldTable): boolean {
  const h = headers.get(c.key);
  if (h === undefined) return false;
  switch (c.kind) {
    case MatchKind.Present:
      return true;
    case MatchKind.Integer:
      switch (h.type) {
        case 'b':
        case 'B':
        case 's':
        case 'u':
        case 'I':
        case 'i':
        case 'l':
          // loose equality compares number and bigint by value without converting
          return (h.value as number | bigint) == (c.value as number | bigint);
        case 'T':
          return c.timestampSeconds !== null && h.value === c.timestampSeconds;
        default:
          return false;
      }
    case MatchKind.Float:
      return (h.type === 'f' || h.type === 'd') && h.value === c.value;
    case MatchKind.Binary:
      return (h.type === 'S' || h.type === 'x') && h.value.equals(c.value as Buffer);
    case MatchKind.Bool:
      return h.type === 't' && h.value === c.value;
    case MatchKind.Decimal:
      return fieldValuesEqual(h, c.value as FieldValue, true);
    case MatchKind.Exact:
      return fieldValuesEqual(h, c.value as FieldValue, true);
  }
}

/** Approximates Erlang's ~tp rendering of a decoded value, for error texts only. */
function erlangTerm(v: FieldValue): string {
  switch (v.type) {
    case 'S':
    case 'x':
      return erlangBinary(v.value);
    case 't':
      return String(v.value);
    case 'l':
    case 'T':
      return v.value.toString();
    case 'D':
      return `{${v.value.scale},${v.value.value}}`;
    case 'V':
      return 'undefined';
    case 'A':
      return `[${v.value.map((item) => `{${fieldTypeName(item.type)},${erlangTerm(item)}}`).join(',')}]`;
    case 'F':
      return `[${[...v.value].map(([k, item]) => `{${erlangBinary(Buffer.from(k))},${fieldTypeName(item.type)},${erlangTerm(item)}}`).join(',')}]`;
    default:
      return String(v.value);
  }
}

function erlangBinary(buf: Buffer): string {
  let printable = true;
  for (const byte of buf) {
    if (byte < 0x20 || byte > 0x7e) {
      printable = false;
      break;
    }
  }
  if (printable) return `<<"${buf.toString('latin1').replace(/["\\]/g, '\\$&')}">>`;
  return `<<${[...buf].join(',')}>>`;
}
