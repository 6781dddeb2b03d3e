import type { QueueEntry } from './queue-entry.js';

/** Ready entries of a queue, in delivery order. */
export interface ReadyQueue {
  readonly length: number;
  readonly byteSize: number;
  push(entry: QueueEntry): void;
  peek(): QueueEntry | undefined;
  shift(): QueueEntry | undefined;
  /** the entry delivered last (lowest priority, highest seq) */
  peekLast(): QueueEntry | undefined;
  /** removes and returns the entry delivered last */
  pop(): QueueEntry | undefined;
  /** the first n entries in delivery order, left in place */
  peekFirst(n: number): QueueEntry[];
  insertBySeq(entry: QueueEntry): void;
}

/**
 * FIFO of ready entries ordered by seq, as a growable ring buffer: push and shift
 * are O(1); a requeue inserts at its original position (binary search by seq), which
 * is O(1) in the common case of requeueing what was at the head.
 */
export class ReadyList implements ReadyQueue {
  private buf: (QueueEntry | undefined)[];
  private head = 0;
  private len = 0;
  private mask: number;
  private bytes = 0;

  constructor(capacity = 16) {
    let cap = 16;
    while (cap < capacity) cap <<= 1;
    this.buf = new Array(cap);
    this.mask = cap - 1;
  }

  get length(): number {
    return this.len;
  }

  /** Sum of body sizes of ready entries. */
  get byteSize(): number {
    return this.bytes;
  }

  push(entry: QueueEntry): void {
    if (this.len === this.buf.length) this.grow();
    this.buf[(this.head + this.len) & this.mask] = entry;
    this.len++;
    this.bytes += entry.message.bodySize;
  }

  peek(): QueueEntry | undefined {
    return this.len === 0 ? undefined : this.buf[this.head];
  }

  peekLast(): QueueEntry | undefined {
    return this.len === 0 ? undefined : this.at(this.len - 1);
  }

  peekFirst(n: number): QueueEntry[] {
    const out: QueueEntry[] = [];
    for (let i = 0; i < n && i < this.len; i++) out.push(this.at(i));
    return out;
  }

  pop(): QueueEntry | undefined {
    if (this.len === 0) return undefined;
    const i = (this.head + this.len - 1) & this.mask;
    const entry = this.buf[i]!;
    this.buf[i] = undefined;
    this.len--;
    this.bytes -= entry.message.bodySize;
    return entry;
  }

  shift(): QueueEntry | undefined {
    if (this.len === 0) return undefined;
    const entry = this.buf[this.head]!;
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.len--;
    this.bytes -= entry.message.bodySize;
    return entry;
  }

  /** Put an entry back where its seq says it belongs (spec: requeue keeps original order). */
  insertBySeq(entry: QueueEntry): void {
    if (this.len === 0 || entry.seq > this.at(this.len - 1).seq) {
      this.push(entry);
      return;
    }
    if (this.len === this.buf.length) this.grow();
    if (entry.seq < this.at(0).seq) {
      this.head = (this.head - 1) & this.mask;
      this.buf[this.head] = entry;
      this.len++;
      this.bytes += entry.message.bodySize;
      return;
    }
    let lo = 0;
    let hi = this.len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.at(mid).seq < entry.seq) lo = mid + 1;
      else hi = mid;
    }
    // shift the tail right by one from lo
    for (let i = this.len; i > lo; i--) {
      this.buf[(this.head + i) & this.mask] = this.buf[(this.head + i - 1) & this.mask];
    }
    this.buf[(this.head + lo) & this.mask] = entry;
    this.len++;
    this.bytes += entry.message.bodySize;
  }

  private at(i: number): QueueEntry {
    return this.buf[(this.head + i) & this.mask]!;
  }

  private grow(): void {
    const old = this.buf;
    const cap = old.length * 2;
    const next: (QueueEntry | undefined)[] = new Array(cap);
    for (let i = 0; i < this.len; i++) next[i] = old[(this.head + i) & this.mask];
    this.buf = next;
    this.head = 0;
    this.mask = cap - 1;
  }
}

/**
 * A priority queue's ready entries: one FIFO per priority level (as LavinMQ keeps one
 * sub-store per level); higher levels are delivered first, FIFO within a level.
 */
export class PriorityReadyList implements ReadyQueue {
  private readonly levels: ReadyList[] = [];
  private len = 0;
  private bytes = 0;
  /** highest level that may be non-empty (levels above it are empty) */
  private top = 0;

  constructor(readonly maxPriority: number) {
    for (let p = 0; p <= maxPriority; p++) this.levels.push(new ReadyList());
  }

  get length(): number {
    return this.len;
  }
  get byteSize(): number {
    return this.bytes;
  }

  push(entry: QueueEntry): void {
    this.levels[entry.priority]!.push(entry);
    this.added(entry);
  }

  insertBySeq(entry: QueueEntry): void {
    this.levels[entry.priority]!.insertBySeq(entry);
    this.added(entry);
  }

  peek(): QueueEntry | undefined {
    return this.len === 0 ? undefined : this.topLevel().peek();
  }

  peekFirst(n: number): QueueEntry[] {
    const out: QueueEntry[] = [];
    for (let p = this.maxPriority; p >= 0 && out.length < n; p--) out.push(...this.levels[p]!.peekFirst(n - out.length));
    return out;
  }

  peekLast(): QueueEntry | undefined {
    for (let p = 0; p <= this.maxPriority; p++) {
      const e = this.levels[p]!.peekLast();
      if (e !== undefined) return e;
    }
    return undefined;
  }

  pop(): QueueEntry | undefined {
    for (let p = 0; p <= this.maxPriority; p++) {
      const e = this.levels[p]!.pop();
      if (e !== undefined) {
        this.len--;
        this.bytes -= e.message.bodySize;
        return e;
      }
    }
    return undefined;
  }

  shift(): QueueEntry | undefined {
    if (this.len === 0) return undefined;
    const entry = this.topLevel().shift()!;
    this.len--;
    this.bytes -= entry.message.bodySize;
    return entry;
  }

  private added(entry: QueueEntry): void {
    this.len++;
    this.bytes += entry.message.bodySize;
    if (entry.priority > this.top) this.top = entry.priority;
  }

  private topLevel(): ReadyList {
    while (this.top > 0 && this.levels[this.top]!.length === 0) this.top--;
    return this.levels[this.top]!;
  }
}
