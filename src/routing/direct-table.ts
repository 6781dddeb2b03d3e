import type { FieldTable } from '../protocol/field-types.js';
import { AbstractRoutingTable } from './abstract-routing-table.js';
import { DestinationSet } from './destination-set.js';
import type { Binding } from './routing-table.js';
import type { RouteSink } from './route-set.js';

/**
 * Direct exchange: routing key equals binding key exactly (spec 3.1.3.1); every
 * destination bound with that key receives the message, each once.
 */
export class DirectTable<D> extends AbstractRoutingTable<D> {
  readonly #byKey = new Map<string, DestinationSet<D>>();

  protected addRoute(binding: Binding<D>): void {
    let dests = this.#byKey.get(binding.routingKey);
    if (dests === undefined) {
      dests = new DestinationSet<D>();
      this.#byKey.set(binding.routingKey, dests);
    }
    dests.add(binding.dest);
  }

  protected removeRoute(binding: Binding<D>): void {
    const dests = this.#byKey.get(binding.routingKey);
    if (dests === undefined) return;
    dests.delete(binding.dest);
    if (dests.size === 0) this.#byKey.delete(binding.routingKey);
  }

  route(routingKey: string, _headers: FieldTable | undefined, out: RouteSink<D>): void {
    // get, never an entry created on a miss: unroutable keys must not grow the map
    this.#byKey.get(routingKey)?.addAllTo(out);
  }
}
