import type { FieldTable, FieldValue } from './field-types.js';

/**
 * A canonical string for a binding's arguments, used as part of the binding identity.
 * RabbitMQ: binding args are sorted by key (rabbit_misc:sort_field_table, top level only)
 * before bindings are compared, and values compare with their types ({Key, Type, Value}),
 * so `{a:1, b:2}` equals `{b:2, a:1}` but int32 1 differs from int64 1 and from "1".
 * Nested tables keep wire order, as RabbitMQ does not sort them.
 */
export function bindingArgsKey(args: FieldTable): string {
  if (args.size === 0) return '';
  const keys = [...args.keys()].sort();
  let out = '';
  for (const key of keys) {
    out += `${key.length}:${key}`;
    out += encodeValue(args.get(key) as FieldValue);
  }
  return out;
}

function encodeTable(table: FieldTable): string {
  let out = `{${table.size}:`;
  for (const [key, value] of table) out += `${key.length}:${key}${encodeValue(value)}`;
  return out + '}';
}

function encodeValue(v: FieldValue): string {
  switch (v.type) {
    case 't':
      return v.value ? 't1' : 't0';
    case 'b':
    case 'B':
    case 's':
    case 'u':
    case 'I':
    case 'i':
    case 'f':
    case 'd':
      // Object.is keeps -0 distinct from 0 (the bytes differ on the wire)
      return `${v.type}${Object.is(v.value, -0) ? '-0' : String(v.value)};`;
    case 'l':
    case 'T':
      return `${v.type}${v.value.toString()};`;
    case 'D':
      return `D${v.value.scale},${v.value.value};`;
    case 'S':
    case 'x':
      return `${v.type}${v.value.length}:${v.value.toString('latin1')}`;
    case 'A': {
      let out = `A${v.value.length}:`;
      for (const item of v.value) out += encodeValue(item);
      return out;
    }
    case 'F':
      return `F${encodeTable(v.value)}`;
    case 'V':
      return 'V';
  }
}
