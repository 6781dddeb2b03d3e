import type { FieldTable, FieldValue } from '../../src/protocol/field-types.js';
import type { RoutingTable } from '../../src/routing/routing-table.js';

/** A destination compared by identity, like a Queue or Exchange object. */
export interface TestDest {
  readonly name: string;
}

export function dest(name: string): TestDest {
  return { name };
}

/** Route and return the destination names, sorted, for table-driven assertions. */
export function routeNames(
  table: RoutingTable<TestDest>,
  routingKey: string,
  headers?: FieldTable,
): string[] {
  const out = new Set<TestDest>();
  table.route(routingKey, headers, out);
  return [...out].map((d) => d.name).sort();
}

export const str = (s: string): FieldValue => ({ type: 'S', value: Buffer.from(s) });
export const bytes = (s: string): FieldValue => ({ type: 'x', value: Buffer.from(s) });
export const int = (n: number, type: 'b' | 'B' | 's' | 'u' | 'I' | 'i' = 'I'): FieldValue => ({ type, value: n });
export const long = (n: bigint): FieldValue => ({ type: 'l', value: n });
export const timestamp = (seconds: bigint): FieldValue => ({ type: 'T', value: seconds });
export const float = (n: number, type: 'f' | 'd' = 'd'): FieldValue => ({ type, value: n });
export const bool = (b: boolean): FieldValue => ({ type: 't', value: b });
export const decimal = (scale: number, value: number): FieldValue => ({ type: 'D', value: { scale, value } });
export const array = (...items: FieldValue[]): FieldValue => ({ type: 'A', value: items });
export const nested = (entries: Record<string, FieldValue>): FieldValue => ({ type: 'F', value: table(entries) });
export const VOID: FieldValue = { type: 'V', value: null };

export function table(entries: Record<string, FieldValue> = {}): FieldTable {
  return new Map(Object.entries(entries));
}

export const NO_ARGS: FieldTable = new Map();
