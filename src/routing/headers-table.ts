import type { FieldTable } from '../protocol/field-types.js';
import { AbstractRoutingTable } from './abstract-routing-table.js';
import { HeadersMatch, validateHeadersBindingArgs } from './headers-match.js';
import type { Binding } from './routing-table.js';
import type { RouteSink } from './route-set.js';

interface HeadersEntry<D> {
  readonly binding: Binding<D>;
  readonly match: HeadersMatch;
}

/**
 * Headers exchange: each binding's args are compiled into a HeadersMatch at bind time;
 * a publish tests every binding whose destination is not already routed to.
 * The routing key plays no part (RabbitMQ: it is still part of the binding identity).
 */
export class HeadersTable<D> extends AbstractRoutingTable<D> {
  readonly #entries: HeadersEntry<D>[] = [];
  readonly #index = new Map<Binding<D>, number>();

  protected override validateBinding(_routingKey: string, args: FieldTable): void {
    validateHeadersBindingArgs(args);
  }

  protected addRoute(binding: Binding<D>): void {
    this.#index.set(binding, this.#entries.length);
    this.#entries.push({ binding, match: new HeadersMatch(binding.args) });
  }

  protected removeRoute(binding: Binding<D>): void {
    const i = this.#index.get(binding);
    if (i === undefined) return;
    // swap-remove: binding order carries no meaning
    const last = this.#entries.pop()!;
    if (last.binding !== binding) {
      this.#entries[i] = last;
      this.#index.set(last.binding, i);
    }
    this.#index.delete(binding);
  }

  route(_routingKey: string, headers: FieldTable | undefined, out: RouteSink<D>): void {
    const entries = this.#entries;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const dest = entry.binding.dest;
      if (!out.has(dest) && entry.match.matches(headers)) out.add(dest);
    }
  }
}
