import { AmqpChannelError } from '../protocol/errors.js';
import { fieldTypeName } from '../protocol/field-table.js';
import type { FieldTable, FieldValue } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';

/** rabbit_misc:type_class: all integer types compare as one class, both floats as another. */
export function typeClass(type: FieldValue['type']): string {
  switch (type) {
    case 'b': case 'B': case 's': case 'u': case 'I': case 'i': case 'l':
      return 'int';
    case 'f': case 'd':
      return 'float';
    default:
      return type;
  }
}

/** Value equality within a type class (integers by value, strings by bytes, tables deeply). */
export function fieldValuesEquivalent(a: FieldValue, b: FieldValue): boolean {
  if (typeClass(a.type) !== typeClass(b.type)) return false;
  switch (a.type) {
    case 'S': case 'x':
      return (a.value as Buffer).equals(b.value as Buffer);
    case 'b': case 'B': case 's': case 'u': case 'I': case 'i': case 'l':
      return BigInt(a.value as number | bigint) === BigInt(b.value as number | bigint);
    case 'f': case 'd': case 'T':
      return a.value === b.value;
    case 'D': {
      const bv = b.value as { scale: number; value: number };
      return a.value.scale === bv.scale && a.value.value === bv.value;
    }
    case 'A': {
      const bv = b.value as readonly FieldValue[];
      return a.value.length === bv.length && a.value.every((v, i) => fieldValuesEquivalent(v, bv[i]!));
    }
    case 'F':
      return tablesEquivalent(a.value, b.value as FieldTable);
    default:
      return a.value === b.value;
  }
}

export function tablesEquivalent(a: FieldTable, b: FieldTable): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (w === undefined || !fieldValuesEquivalent(v, w)) return false;
  }
  return true;
}

function plain(v: FieldValue): string {
  switch (v.type) {
    case 'S': case 'x':
      return (v.value as Buffer).toString('utf8');
    case 'F': case 'A':
      return '…';
    case 'D':
      return `${v.value.value}e-${v.value.scale}`;
    default:
      return String(v.value);
  }
}

/** RabbitMQ's val/1: "none", or "the value 'V' of type 'T'". */
function describe(v: FieldValue | undefined): string {
  if (v === undefined) return 'none';
  return `the value '${plain(v)}' of type '${fieldTypeName(v.type)}'`;
}


const isClassicOrNone = (v: FieldValue | undefined): boolean => v === undefined || (v.type === 'S' && v.value.toString('utf8') === 'classic');

/** rabbit_misc:assert_args_equivalence over the given keys → 406 with RabbitMQ's text. */
export function assertArgsEquivalent(current: FieldTable, received: FieldTable, desc: string, keys: readonly string[]): void {
  for (const key of keys) {
    const c = current.get(key);
    const r = received.get(key);
    if (c === undefined && r === undefined) continue;
    if (c !== undefined && r !== undefined && fieldValuesEquivalent(c, r)) continue;
    // rabbit_misc:assert_field_equivalence: a classic queue need not carry x-queue-type
    if (key === 'x-queue-type' && isClassicOrNone(c) && isClassicOrNone(r)) continue;
    // same type class: RabbitMQ prints the bare values; otherwise each with its type
    const sameClass = c !== undefined && r !== undefined && typeClass(c.type) === typeClass(r.type);
    throw new AmqpChannelError(
      ReplyCode.PreconditionFailed,
      sameClass
        ? `inequivalent arg '${key}' for ${desc}: received '${plain(r)}' but current is '${plain(c)}'`
        : `inequivalent arg '${key}' for ${desc}: received ${describe(r)} but current is ${describe(c)}`,
    );
  }
}
