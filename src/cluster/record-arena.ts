/**
 * Buffers for the leader's encoded records, carved in turn out of one slab and reused once
 * the records are released (in seq order: `release(upTo)`). A record the slab has no room
 * for (too large, or the slab is full of records still in use) gets a buffer of its own.
 *
 * Why: every record was a fresh ~100–300 KiB ArrayBuffer, and V8 starts a full collection
 * for every 64 MiB of ArrayBuffer memory allocated; the leader's main thread spent about a
 * third of its time collecting. The caller must release a record only once nothing reads
 * it any more: its own log write done, every socket write of it done, no cache holding it.
 */
export class RecordArena {
  private readonly slab: Buffer;
  /** slots in use, oldest first: [seq, start, end] (fresh buffers are not tracked) */
  private slots: number[] = [];
  private first = 0;

  constructor(readonly size: number) {
    this.slab = Buffer.allocUnsafeSlow(size);
  }

  /** true when `buf` is a slot of this arena (a buffer that will be reused) */
  owns(buf: Buffer): boolean {
    return buf.buffer === this.slab.buffer;
  }

  /** a buffer of `length` bytes for the record `seq` (seqs increase from call to call) */
  alloc(seq: number, length: number): Buffer {
    const at = this.place(length);
    if (at < 0) return Buffer.allocUnsafeSlow(length);
    this.slots.push(seq, at, at + length);
    return this.slab.subarray(at, at + length);
  }

  /** slots of records up to `upTo` may be reused */
  release(upTo: number): void {
    const s = this.slots;
    while (this.first < s.length && s[this.first]! <= upTo) this.first += 3;
    if (this.first === s.length) {
      this.slots = [];
      this.first = 0;
    } else if (this.first >= 3 * 256) {
      this.slots = s.slice(this.first);
      this.first = 0;
    }
  }

  /** where a slot of `length` bytes fits, or -1 */
  private place(length: number): number {
    const s = this.slots;
    if (length > this.size / 4) return -1;
    if (this.first === s.length) return 0;
    const head = s[this.first + 1]!; // start of the oldest slot in use
    const tail = s[s.length - 1]!; // end of the newest
    if (tail > head) {
      // in use: [head, tail); free: [tail, size) and [0, head)
      if (this.size - tail >= length) return tail;
      return head >= length ? 0 : -1;
    }
    // wrapped: in use [head, size) and [0, tail); free: [tail, head)
    return head - tail >= length ? tail : -1;
  }
}
