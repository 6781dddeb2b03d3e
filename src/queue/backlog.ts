import type { SpillChunk, SpillStream } from '../store/store.js';
import { ENTRY_OVERHEAD, type MemoryBudget } from './memory-budget.js';
import type { QueueEntry } from './queue-entry.js';
import { ReadyList } from './ready-list.js';

/**
 * A run of ready entries paged out of memory, in delivery order (one lane: one priority,
 * seq ascending). Persistent entries of a durable queue are already in the durable log:
 * paging them out only drops the in-memory copies, and they are read back by seq range.
 * The others were written to the spill as one chunk.
 */
export interface PagedChunk {
  /** the priority their index entries carry */
  readonly priority: number;
  firstSeq: number;
  readonly lastSeq: number;
  count: number;
  /** body bytes */
  bytes: number;
  /** entries in the durable log (seqs firstSeq..lastSeq of `priority`) */
  durable: number;
  /** the other entries, in the spill */
  readonly spill: SpillChunk | null;
  /** the durable entries are readable once this store batch is committed */
  readonly batchId: number;
  /** seq → delivery count of entries a quorum queue had seen come back (restored at page-in) */
  readonly deliveryCounts: ReadonlyMap<number, number> | null;
}

/**
 * One priority level of a queue: the entries consumers get next (head), the chunks paged
 * out after them, and what was published after those (tail). Delivery order is head,
 * chunks, tail. Without chunks the tail is empty and publishes go straight to the head.
 */
export class Lane {
  readonly head = new ReadyList();
  readonly tail = new ReadyList();
  readonly chunks: PagedChunk[] = [];
  /** this lane's chunks in the spill (opened on the first spilled chunk) */
  stream: SpillStream | null = null;

  constructor(readonly priority: number) {}

  get isEmpty(): boolean {
    return this.head.length === 0 && this.chunks.length === 0 && this.tail.length === 0;
  }
}

/**
 * A queue's ready entries: one lane per priority level (one lane without x-max-priority),
 * higher levels delivered first, FIFO within a level (as LavinMQ keeps one sub-store per
 * level). Counts in-memory entries (length, byteSize) and paged ones apart, and charges the
 * memory of in-memory entries to the broker's budget.
 */
export class Backlog {
  readonly lanes: Lane[] = [];
  /** ready entries in memory, and their body bytes */
  length = 0;
  byteSize = 0;
  /** ready entries paged out, and their body bytes */
  pagedCount = 0;
  pagedBytes = 0;
  /** highest lane that may hold anything */
  private top = 0;

  constructor(
    maxPriority: number,
    private readonly budget: MemoryBudget | null,
  ) {
    for (let p = 0; p <= maxPriority; p++) this.lanes.push(new Lane(p));
  }

  /** memory the in-memory entries are charged for */
  get memoryCost(): number {
    return this.length * ENTRY_OVERHEAD + this.byteSize;
  }

  /** A new entry (seq above every other of its priority). */
  push(entry: QueueEntry): void {
    const lane = this.lanes[entry.priority]!;
    if (lane.chunks.length === 0) lane.head.push(entry);
    else lane.tail.push(entry);
    this.added(entry);
  }

  /** An entry back at its place among the next ones (requeue). */
  insertBySeq(entry: QueueEntry): void {
    this.lanes[entry.priority]!.head.insertBySeq(entry);
    this.added(entry);
  }

  /** The lane consumers are served from next (the highest one holding anything), or undefined. */
  private topLane(): Lane | undefined {
    const lanes = this.lanes;
    while (this.top > 0 && lanes[this.top]!.isEmpty) this.top--;
    const lane = lanes[this.top]!;
    return lane.isEmpty ? undefined : lane;
  }

  /** The next entry to deliver; undefined when there is none in memory (see nextPaged). */
  peek(): QueueEntry | undefined {
    if (this.length === 0) return undefined;
    return this.topLane()?.head.peek();
  }

  shift(): QueueEntry | undefined {
    if (this.length === 0) return undefined;
    const lane = this.topLane();
    const entry = lane?.head.shift();
    if (entry !== undefined) this.removed(entry);
    return entry;
  }

  /** The lane whose paged chunks consumers reach next (the top lane, when it has chunks), or null. */
  nextPaged(): Lane | null {
    if (this.pagedCount === 0) return null;
    const lane = this.topLane();
    return lane !== undefined && lane.chunks.length !== 0 ? lane : null;
  }

  /** The first `n` entries in memory in delivery order, stopping where paged entries come next. */
  peekFirst(n: number): QueueEntry[] {
    const out: QueueEntry[] = [];
    for (let p = this.lanes.length - 1; p >= 0 && out.length < n; p--) {
      const lane = this.lanes[p]!;
      out.push(...lane.head.peekFirst(n - out.length));
      if (lane.chunks.length !== 0) break;
    }
    return out;
  }

  /** An entry read back from `lane`'s first chunk goes to the end of its head. */
  pagedIn(lane: Lane, entry: QueueEntry): void {
    lane.head.push(entry);
    this.added(entry);
  }

  /** `lane`'s first chunk was read back (or found empty): it goes; with no chunk left the tail joins the head. */
  chunkDone(lane: Lane, chunk: PagedChunk): void {
    const i = lane.chunks.indexOf(chunk);
    if (i >= 0) lane.chunks.splice(i, 1);
    this.pagedCount -= chunk.count;
    this.pagedBytes -= chunk.bytes;
    if (chunk.spill !== null) lane.stream?.free(chunk.spill);
    if (lane.chunks.length === 0) {
      for (let e = lane.tail.shift(); e !== undefined; e = lane.tail.shift()) lane.head.push(e);
    }
    if (this.pagedCount < 0 || (this.pagedCount === 0) !== this.lanes.every((l) => l.chunks.length === 0)) this.recount();
  }

  /** Part of a durable chunk was read back (`count` entries up to `lastSeq`, `bytes` of bodies). */
  chunkAdvanced(chunk: PagedChunk, count: number, bytes: number, lastSeq: number): void {
    chunk.firstSeq = lastSeq + 1;
    chunk.count -= count;
    chunk.durable -= count;
    chunk.bytes -= bytes;
    this.pagedCount -= count;
    this.pagedBytes -= bytes;
  }

  /** A chunk made of entries taken from the tail's front (append) or the head's end (prepend). */
  addChunk(lane: Lane, chunk: PagedChunk, fromTail: boolean): void {
    if (fromTail) lane.chunks.push(chunk);
    else lane.chunks.unshift(chunk);
    this.pagedCount += chunk.count;
    this.pagedBytes += chunk.bytes;
    if (lane.priority > this.top) this.top = lane.priority;
  }

  /** Entries taken out of memory for a chunk (they count as paged once addChunk runs). */
  tookOut(entries: readonly QueueEntry[]): number {
    let bytes = 0;
    for (const e of entries) bytes += e.message.bodySize;
    const cost = entries.length * ENTRY_OVERHEAD + bytes;
    this.length -= entries.length;
    this.byteSize -= bytes;
    if (this.budget !== null) this.budget.used -= cost;
    return cost;
  }

  /**
   * Drops every ready entry (purge, delete): memory is released at once, spill streams are
   * closed. Returns what was dropped from memory (durable entries' store records are the
   * caller's: a purge or delete drops the queue's whole range).
   */
  clear(): void {
    if (this.budget !== null) this.budget.used -= this.memoryCost;
    for (const lane of this.lanes) {
      lane.head.clear();
      lane.tail.clear();
      lane.chunks.length = 0;
      lane.stream?.close();
      lane.stream = null;
    }
    this.length = 0;
    this.byteSize = 0;
    this.pagedCount = 0;
    this.pagedBytes = 0;
    this.top = 0;
  }

  private added(entry: QueueEntry): void {
    const size = entry.message.bodySize;
    this.length++;
    this.byteSize += size;
    if (entry.priority > this.top) this.top = entry.priority;
    const b = this.budget;
    if (b !== null) {
      b.used += ENTRY_OVERHEAD + size;
      if (b.used > b.limit) b.over();
    }
  }

  private removed(entry: QueueEntry): void {
    const size = entry.message.bodySize;
    this.length--;
    this.byteSize -= size;
    if (this.budget !== null) this.budget.used -= ENTRY_OVERHEAD + size;
  }

  /** counts from the chunks themselves (after the store returned fewer entries than counted) */
  private recount(): void {
    let count = 0;
    let bytes = 0;
    for (const lane of this.lanes) {
      for (const c of lane.chunks) {
        count += c.count;
        bytes += c.bytes;
      }
    }
    this.pagedCount = count;
    this.pagedBytes = bytes;
  }
}
