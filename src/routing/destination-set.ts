/**
 * The destinations bound at one routing point (a direct key, a fanout exchange, a topic
 * trie leaf), reference-counted because bindings that differ only by args (or, for
 * fanout, by routing key) share the point: unbinding one must keep the destination.
 * A dense array makes `addAllTo` an index loop with no iterator allocation on publish;
 * removal is swap-remove (destination order carries no meaning).
 */
import type { RouteSink } from './route-set.js';
export class DestinationSet<D> {
  readonly #dests: D[] = [];
  readonly #refs: number[] = [];
  readonly #index = new Map<D, number>();

  get size(): number {
    return this.#dests.length;
  }

  /** adds one reference; true when dest was not present before */
  add(dest: D): boolean {
    const i = this.#index.get(dest);
    if (i !== undefined) {
      this.#refs[i]!++;
      return false;
    }
    this.#index.set(dest, this.#dests.length);
    this.#dests.push(dest);
    this.#refs.push(1);
    return true;
  }

  /** drops one reference; true when that was the last one and dest is gone */
  delete(dest: D): boolean {
    const i = this.#index.get(dest);
    if (i === undefined) return false;
    if (--this.#refs[i]! > 0) return false;
    const last = this.#dests.length - 1;
    if (i !== last) {
      const moved = this.#dests[last]!;
      this.#dests[i] = moved;
      this.#refs[i] = this.#refs[last]!;
      this.#index.set(moved, i);
    }
    this.#dests.pop();
    this.#refs.pop();
    this.#index.delete(dest);
    return true;
  }

  has(dest: D): boolean {
    return this.#index.has(dest);
  }

  addAllTo(out: RouteSink<D>): void {
    const dests = this.#dests;
    for (let i = 0; i < dests.length; i++) out.add(dests[i]!);
  }
}
