import type { FieldTable } from '../protocol/field-types.js';
import { AbstractRoutingTable } from './abstract-routing-table.js';
import { DestinationSet } from './destination-set.js';
import type { Binding } from './routing-table.js';
import type { RouteSink } from './route-set.js';

/** Fanout exchange: every bound destination, whatever the routing key (spec 3.1.3.2). */
export class FanoutTable<D> extends AbstractRoutingTable<D> {
  // refcounted: the same destination may be bound with several keys/args
  readonly #dests = new DestinationSet<D>();

  protected addRoute(binding: Binding<D>): void {
    this.#dests.add(binding.dest);
  }

  protected removeRoute(binding: Binding<D>): void {
    this.#dests.delete(binding.dest);
  }

  route(_routingKey: string, _headers: FieldTable | undefined, out: RouteSink<D>): void {
    this.#dests.addAllTo(out);
  }
}
