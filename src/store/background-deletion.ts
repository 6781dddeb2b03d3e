import type { Logger } from 'pino';
import type { DurableLog } from './durable-log.js';
import { indexMessageId, indexRefs, indexTransient, messageKeyOfIndexValue, queueIndexRange } from './keys.js';
import type { MessageRefs } from './message-refs.js';
import type { BatchOp } from './native-batch.js';
import type { CommitListener } from './store.js';

/**
 * Index entries deleted per write: small enough that a commit of other queues that comes
 * while one is written waits well under a millisecond, and that building and handing it
 * to LevelDB (about 1 µs per key on the main thread) never holds the event loop long.
 */
export const DELETION_CHUNK = 64;
/**
 * Pause after each chunk. Deleting as fast as LevelDB takes the writes filled its memtable
 * with tombstones faster than it was flushed, and other queues' synced commits waited for
 * the flush: a bystander publishing with confirms every 5 ms while a 300k-message queue was
 * deleted saw its longest wait grow by 15.8 ms (median of 9 runs; up to 60 ms) with 256-entry
 * chunks back to back, by 2.6 ms (at most 9.4 ms) with 64-entry chunks 1 ms apart. The
 * deletion then takes about 5 s per 300k entries, in the background.
 */
export const DELETION_PACE_MS = 1;
/** Index rows read at once (one iterator: its opening and closing cost as much as many rows). */
export const DELETION_READ = 4 * DELETION_CHUNK;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;

/** Reads up to `limit` index rows of a range, in key order (from the committed data). */
export type RangeReader = (range: { gt?: Buffer; gte?: Buffer; lt: Buffer; limit: number }) => Promise<Array<[Buffer, Buffer]>>;

interface Job {
  readonly queueId: number;
  /** the job may read once this batch is durable (it holds the queue's last operations) */
  readonly afterBatch: number;
  /** last index key deleted so far */
  lastKey: Buffer | null;
  deleted: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * Deletes the index entries of deleted (and purged) queues in the background, releasing
 * each entry's message reference as an ack would (a body goes with its last one). Rows are
 * read DELETION_READ at a time and deleted DELETION_CHUNK at a time, each chunk one write
 * of its own beside the group commit (DurableLog.writeAside): not synced, never waiting in
 * a commit of other queues, and a commit that comes while one is written waits for that one
 * small write only. Keys go to LevelDB as the Buffers they were read as.
 *
 * A chunk is written once everything queued before it is: an ack on another queue that
 * released a shared body's other reference is written no later than the chunk that deletes
 * the body. Unsynced chunks are safe: LevelDB's log is written in order, so any later
 * synced write makes them durable too, and a crash that loses some only leaves entries that
 * recovery finds and deletes again.
 *
 * Crash safety comes from the index itself: a job exists exactly while index entries of a
 * queue id with no queue record remain. The queue record's delete (or, for a purge, its
 * rewrite under a new id) is written before any of the entries go, so after a crash
 * recovery finds the leftover range, counts its references like any other, and hands it
 * back here to finish.
 */
export class BackgroundDeletion {
  private readonly jobs: Job[] = [];
  private readonly queued = new Set<number>();
  private running = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly log: DurableLog,
    private readonly refs: MessageRefs,
    private readonly read: RangeReader,
    private readonly logger: Logger,
  ) {}

  /** queue ids whose entries are still being deleted */
  get pendingQueues(): number {
    return this.jobs.length;
  }

  /** The queue's entries are (being) deleted: reads see none of them. */
  has(queueId: number): boolean {
    return this.queued.has(queueId);
  }

  /** Deletes every index entry of `queueId` once batch `afterBatch` is durable. */
  schedule(queueId: number, afterBatch: number): void {
    if (this.queued.has(queueId)) return;
    this.queued.add(queueId);
    this.jobs.push({ queueId, afterBatch, lastKey: null, deleted: 0 });
    this.kick();
  }

  /** Writing may go on (after open). */
  start(): void {
    this.stopped = false;
    this.kick();
  }

  /** Store closing: the jobs left are finished by the next recovery. */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves once no deletion is pending (tests, shutdown reports). */
  whenIdle(): Promise<void> {
    if (this.jobs.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private kick(): void {
    if (this.running || this.stopped || this.jobs.length === 0) return;
    this.running = true;
    this.run().catch((err: unknown) => {
      this.running = false;
      this.logger.error({ err }, 'store: background deletion failed; it resumes with the next deletion or restart');
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped && this.jobs.length !== 0) {
      const job = this.jobs[0]!;
      if (!this.log.isCommitted(job.afterBatch)) {
        await this.commitOf();
        continue;
      }
      const range = queueIndexRange(job.queueId);
      const limit = DELETION_READ;
      const rows = await this.read(job.lastKey === null ? { gte: range.gte, lt: range.lt, limit } : { gt: job.lastKey, lt: range.lt, limit });
      if (this.stopped) break;
      if (rows.length === 0) {
        this.jobs.shift();
        this.queued.delete(job.queueId);
        if (job.deleted > 0) this.logger.info({ queueId: job.queueId, entries: job.deleted }, 'store: entries of a deleted queue removed');
        continue;
      }
      for (let from = 0; from < rows.length && !this.stopped; from += DELETION_CHUNK) {
        const chunk = rows.slice(from, from + DELETION_CHUNK);
        // keys stay the Buffers they were read as; a body goes with its last reference
        const ops: BatchOp[] = [];
        for (const [key, value] of chunk) {
          ops.push({ type: 'del', key });
          if (indexTransient(value) || this.refs.release(indexMessageId(value), indexRefs(value))) ops.push({ type: 'del', key: messageKeyOfIndexValue(value) });
        }
        if (!(await this.write(ops))) break;
        job.lastKey = chunk[chunk.length - 1]![0];
        job.deleted += chunk.length;
        await sleep(DELETION_PACE_MS);
      }
    }
    this.running = false;
    if (this.jobs.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Writes one chunk beside the group commit (DurableLog.writeAside: not synced, ahead of
   * commits queued after it, which wait for this one small write at most). A failed write is
   * retried with the same operations (their references are released already) after a
   * backoff; false when the store stops first (recovery then finds what is left).
   */
  private async write(ops: readonly BatchOp[]): Promise<boolean> {
    let delay = RETRY_MIN_MS;
    for (;;) {
      try {
        await this.log.writeAside(ops);
        return true;
      } catch (err) {
        if (this.stopped) return false;
        if (delay === RETRY_MIN_MS) this.logger.warn({ err }, 'store: a background deletion write failed; retrying');
        await sleep(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        if (this.stopped) return false;
      }
    }
  }

  /** resolves when the open batch has been written (or failed: the loop then waits again) */
  private commitOf(): Promise<void> {
    return new Promise<void>((resolve) => {
      const listener: CommitListener = { batchCommitted: () => resolve() };
      this.log.afterCommit(listener);
    });
  }
}
