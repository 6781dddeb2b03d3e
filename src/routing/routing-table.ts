import type { FieldTable } from '../protocol/field-types.js';
import { DirectTable } from './direct-table.js';
import { FanoutTable } from './fanout-table.js';
import { HeadersTable } from './headers-table.js';
import { TopicTable } from './topic-table.js';
import type { RouteSink } from './route-set.js';

/** One binding as stored: identity is (dest, routingKey, args) with args compared order-insensitively. */
export interface Binding<D> {
  readonly dest: D;
  readonly routingKey: string;
  readonly args: FieldTable;
}

/**
 * The bindings of one exchange, compiled at bind time so that `route` does no parsing
 * and allocates nothing beyond what the caller supplies (topic: the split words).
 * Destinations (queues or exchanges) are compared by identity.
 */
export interface RoutingTable<D> {
  /** returns false when this exact binding (dest, routingKey, args) already exists (RabbitMQ: bind twice = no-op) */
  bind(dest: D, routingKey: string, args: FieldTable): boolean;
  /** returns false when no such binding (exact dest+key+args match, args compared order-insensitively with types) */
  unbind(dest: D, routingKey: string, args: FieldTable): boolean;
  /** adds every matching destination to `out` (a Set: a destination bound twice appears once) */
  route(routingKey: string, headers: FieldTable | undefined, out: RouteSink<D>): void;
  /** removes all bindings to dest (queue/exchange deleted); returns how many were removed */
  removeDestination(dest: D): number;
  hasBindings(): boolean;
  bindingCount(): number;
  bindings(): IterableIterator<Binding<D>>;
  hasBinding(dest: D, routingKey: string, args: FieldTable): boolean;
}

export type RoutingTableType = 'direct' | 'fanout' | 'topic' | 'headers';

export function createRoutingTable<D>(type: RoutingTableType): RoutingTable<D> {
  switch (type) {
    case 'direct':
      return new DirectTable<D>();
    case 'fanout':
      return new FanoutTable<D>();
    case 'topic':
      return new TopicTable<D>();
    case 'headers':
      return new HeadersTable<D>();
    default: {
      const never: never = type;
      throw new Error(`unknown exchange type ${String(never)}`);
    }
  }
}
