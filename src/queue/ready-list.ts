import type { QueueEntry } from './queue-entry.js';

/**
 * FIFO of ready entries ordered by seq, as a growable ring buffer: push and shift
 * are O(1); a requeue inserts at its original position (binary search by seq), which
 * is O(1) in the common case of requeueing what was at the head.
 */
export class ReadyList {
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

  /** Drops every entry. */
  clear(): void {
    this.buf = new Array(16);
    this.mask = 15;
    this.head = 0;
    this.len = 0;
    this.bytes = 0;
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
