/**
 * Where a routing table puts the destinations a message matches. A JS Set fits, but
 * Set.prototype.clear() allocates a fresh hash table every time, once per publish on the
 * hot path; RouteSet is the reusable alternative the broker routes into.
 */
export interface RouteSink<T> {
  add(x: T): unknown;
  has(x: T): boolean;
  readonly size: number;
}

/** Up to this many members, membership is a scan of the array (no hashing at all). */
const LINEAR_MAX = 8;

/**
 * An insertion-ordered set of destinations, reused from publish to publish: clear() keeps
 * the array, and small sets (the usual 1 to a few queues) never hash. Past LINEAR_MAX
 * members an index Set is built for that fill and dropped at clear().
 */
export class RouteSet<T> implements RouteSink<T> {
  private readonly items: (T | undefined)[] = [];
  private index: Set<T> | null = null;
  size = 0;

  add(x: T): this {
    const n = this.size;
    if (this.index !== null) {
      if (this.index.has(x)) return this;
      this.index.add(x);
    } else {
      const items = this.items;
      for (let i = 0; i < n; i++) if (items[i] === x) return this;
      if (n === LINEAR_MAX) {
        this.index = new Set(items.slice(0, n) as T[]);
        this.index.add(x);
      }
    }
    this.items[n] = x;
    this.size = n + 1;
    return this;
  }

  has(x: T): boolean {
    if (this.index !== null) return this.index.has(x);
    const items = this.items;
    for (let i = 0, n = this.size; i < n; i++) if (items[i] === x) return true;
    return false;
  }

  /** The i-th member in insertion order (0 <= i < size). */
  get(i: number): T {
    return this.items[i] as T;
  }

  clear(): void {
    const items = this.items;
    // drop the references (a deleted queue must not stay reachable from here)
    for (let i = 0, n = this.size; i < n; i++) items[i] = undefined;
    this.size = 0;
    this.index = null;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.size; i++) yield this.items[i] as T;
  }
}
