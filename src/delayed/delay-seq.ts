/**
 * Sequence numbers for the entries of a delayed exchange's internal durable queue,
 * chosen so that the store's index order (queueId, 255 - priority, seq) is due order:
 * seq = (dueAt - epoch) * 2^12 + counter. Entries are written with priority 0.
 *
 * 2^53: seq must stay a safe integer (EntryRecord.seq < 2^53), leaving 41 bits of
 * milliseconds. Counted from the Unix epoch that would end in 2039, so due times are
 * counted from DELAY_SEQ_EPOCH_MS (2020-01-01): good until 2089. A due time before the
 * epoch is clamped to it (it is long past due anyway), one after the last is clamped
 * down (the plugin caps x-delay at 2^32 - 1 ms, about 49.7 days, so it never happens).
 */
export const DELAY_SEQ_EPOCH_MS = Date.UTC(2020, 0, 1);
export const DELAY_SEQ_COUNTER_BITS = 12;
/** counters per millisecond: 4096 */
export const DELAY_SEQ_COUNTER_LIMIT = 2 ** DELAY_SEQ_COUNTER_BITS;
/** largest representable millisecond offset from the epoch: 2^41 - 1 */
const MAX_RELATIVE_MS = Math.floor(Number.MAX_SAFE_INTEGER / DELAY_SEQ_COUNTER_LIMIT);
/** last due time a seq can carry (2089-09-06) */
export const DELAY_SEQ_MAX_DUE_MS = DELAY_SEQ_EPOCH_MS + MAX_RELATIVE_MS;

function relativeMs(dueAtMs: number): number {
  const rel = Math.floor(dueAtMs) - DELAY_SEQ_EPOCH_MS;
  if (!(rel > 0)) return 0; // also NaN
  return rel > MAX_RELATIVE_MS ? MAX_RELATIVE_MS : rel;
}

/** seq for an entry due at `dueAtMs` (wall clock ms); counter in [0, 4096) orders ties */
export function delaySeq(dueAtMs: number, counter: number): number {
  if (!Number.isInteger(counter) || counter < 0 || counter >= DELAY_SEQ_COUNTER_LIMIT) {
    throw new RangeError(`delay seq counter must be an integer in [0, ${DELAY_SEQ_COUNTER_LIMIT}), got ${counter}`);
  }
  // exact: a multiple of a power of two below 2^53, plus a small integer
  return relativeMs(dueAtMs) * DELAY_SEQ_COUNTER_LIMIT + counter;
}

/** the due time (wall clock ms) a seq carries */
export function dueAtOfSeq(seq: number): number {
  return Math.floor(seq / DELAY_SEQ_COUNTER_LIMIT) + DELAY_SEQ_EPOCH_MS;
}

/** the tie-breaking counter a seq carries */
export function counterOfSeq(seq: number): number {
  return seq % DELAY_SEQ_COUNTER_LIMIT;
}

/**
 * Hands out seqs unique among the live entries of one delayed exchange's queue (a
 * duplicate would overwrite another message's index entry). A rolling counter keeps
 * schedule order among equal due times; when all 4096 counters of a millisecond are
 * live the entry moves to the next millisecond (due 1 ms later) rather than collide.
 */
export class DelaySeqAllocator {
  readonly #live = new Set<number>();
  #counter = 0;

  /** live seqs */
  get size(): number {
    return this.#live.size;
  }

  has(seq: number): boolean {
    return this.#live.has(seq);
  }

  allocate(dueAtMs: number): number {
    let base = delaySeq(dueAtMs, 0);
    for (;;) {
      for (let k = 0; k < DELAY_SEQ_COUNTER_LIMIT; k++) {
        const c = (this.#counter + k) & (DELAY_SEQ_COUNTER_LIMIT - 1);
        const seq = base + c;
        if (!this.#live.has(seq)) {
          this.#live.add(seq);
          this.#counter = (c + 1) & (DELAY_SEQ_COUNTER_LIMIT - 1);
          return seq;
        }
      }
      if (base + DELAY_SEQ_COUNTER_LIMIT > Number.MAX_SAFE_INTEGER) {
        throw new RangeError('no free delay seq: due time at the end of the representable range');
      }
      base += DELAY_SEQ_COUNTER_LIMIT;
    }
  }

  /** the entry was delivered or deleted: its seq may be reused */
  release(seq: number): void {
    this.#live.delete(seq);
  }

  /** an entry found at recovery */
  restore(seq: number): void {
    this.#live.add(seq);
  }

  clear(): void {
    this.#live.clear();
  }
}
