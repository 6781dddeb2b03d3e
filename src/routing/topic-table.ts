import type { FieldTable } from '../protocol/field-types.js';
import { AbstractRoutingTable } from './abstract-routing-table.js';
import type { Binding } from './routing-table.js';
import { TopicTrie } from './topic-trie.js';
import type { RouteSink } from './route-set.js';

/**
 * Topic exchange (spec 3.1.3.3): dot-separated words, `*` one word, `#` zero or more.
 * RabbitMQ 3.x accepts any number of `#` per binding key; 4.x caps it at two, we do not.
 */
export class TopicTable<D> extends AbstractRoutingTable<D> {
  readonly #trie = new TopicTrie<D>();

  protected addRoute(binding: Binding<D>): void {
    this.#trie.add(binding.routingKey, binding.dest);
  }

  protected removeRoute(binding: Binding<D>): void {
    this.#trie.remove(binding.routingKey, binding.dest);
  }

  route(routingKey: string, _headers: FieldTable | undefined, out: RouteSink<D>): void {
    this.#trie.match(routingKey, out);
  }
}
