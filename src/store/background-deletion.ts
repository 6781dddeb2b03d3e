import type { Logger } from 'pino';
import type { DurableLog } from './durable-log.js';
import { indexMessageId, indexRefs, indexTransient, messageKeyOfIndexValue, queueIndexRange, readU64, writeU64 } from './keys.js';
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
 * deletion then takes about 8 s per 300k entries on the 2-core bench machine, in the
 * background.
 */
export const DELETION_PACE_MS = 1;
/** Index rows read at once (one iterator: its opening and closing cost as much as many rows). */
export const DELETION_READ = 4 * DELETION_CHUNK;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;

/** Reads up to `limit` index rows of a range, in key order (from the committed data). */
export type RangeReader = (range: { gt?: Buffer; gte?: Buffer; lt: Buffer; limit: number }) => Promise<Array<[Buffer, Buffer]>>;

/**
 * Seqs of one priority level deleted at once by the windowed path: at most this many
 * entries, their bodies in DELETION_CHUNK writes, then the window's index keys in one
 * native range delete.
 */
export const DELETION_WINDOW = 4 * DELETION_CHUNK;

/**
 * What the windowed path needs of the store (a single node's LevelDB: its writes reach no
 * replica, so a cluster leader deletes row by row through the log instead).
 */
export interface RangeAccess {
  /** false while the store's writes go through an interceptor (a cluster leader) */
  readonly local: boolean;
  /** the first key of [from, lt) (from inclusive), or null */
  firstKey(from: Buffer, lt: Buffer): Promise<Buffer | null>;
  /** the values of [gte, lt), in key order */
  values(gte: Buffer, lt: Buffer): Promise<Buffer[]>;
  /** deletes every key of [gte, lt) in LevelDB itself (unsynced, like a write aside) */
  clear(gte: Buffer, lt: Buffer): Promise<void>;
}

interface Job {
  readonly queueId: number;
  /** the job may read once this batch is durable (it holds the queue's last operations) */
  readonly afterBatch: number;
  /** every index key of the queue below this one is deleted (null: none yet) */
  from: Buffer | null;
  deleted: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * Deletes the index entries of deleted (and purged) queues in the background, releasing
 * each entry's message reference as an ack would (a body goes with its last one).
 *
 * On a single node the entries go in windows (deleteWindow): the values of up to
 * DELETION_WINDOW entries are read, the bodies they release deleted, then the entries'
 * keys by LevelDB's own range delete. A cluster leader's writes must reach its replicas
 * through the log, so there rows are read DELETION_READ at a time and deleted
 * DELETION_CHUNK at a time, each chunk one write
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
    private readonly access: RangeAccess | null = null,
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
    this.jobs.push({ queueId, afterBatch, from: null, deleted: 0 });
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
      if (this.access !== null && this.access.local) {
        const done = await this.deleteWindow(job, range, this.access);
        if (done === null) break;
        if (done) this.finish(job);
        continue;
      }
      const rows = await this.read({ gte: job.from ?? range.gte, lt: range.lt, limit: DELETION_READ });
      if (this.stopped) break;
      if (rows.length === 0) {
        this.finish(job);
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
        job.from = successor(chunk[chunk.length - 1]![0]);
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

  private finish(job: Job): void {
    this.jobs.shift();
    this.queued.delete(job.queueId);
    if (job.deleted > 0) this.logger.info({ queueId: job.queueId, entries: job.deleted }, 'store: entries of a deleted queue removed');
  }

  /**
   * The windowed path: the entries of one priority level whose seqs lie in
   * [first, first + DELETION_WINDOW). Their values are read (one Buffer each, where reading
   * rows costs two: see LevelStore#readValues), their unshared bodies deleted in writes
   * aside, and then their keys by LevelDB's own range delete, which makes no JavaScript
   * object at all. The deletion's garbage is what other queues' confirms waited for: every
   * Buffer LevelDB hands back is an ArrayBuffer of its own, which a young-generation
   * collection sweeps on the main thread (collections of 3-10 ms every ~0.4 s during a 300k
   * delete, against none without it). Sampled in-process over a 300k delete: 171 MB
   * allocated against 257 MB row by row; a bystander's p99 confirm wait 4.4-4.8 ms against
   * 4.7-6.3 (bench/results/stall-2026-12-06-windows). Bodies go before keys: a crash between
   * the two leaves entries whose bodies are gone, which recovery finds without a queue
   * record and deletes again (deleting a missing body is harmless; the references are
   * counted again from the entries left). True when the queue has no entry left; null when
   * the store stopped.
   */
  private async deleteWindow(job: Job, range: { gte: Buffer; lt: Buffer }, access: RangeAccess): Promise<boolean | null> {
    const first = await access.firstKey(job.from ?? range.gte, range.lt);
    if (this.stopped) return null;
    if (first === null) return true;
    const upper = windowEnd(first);
    const values = await access.values(first, upper);
    if (this.stopped) return null;
    for (let at = 0; at < values.length; at += DELETION_CHUNK) {
      const ops: BatchOp[] = [];
      for (let i = at; i < values.length && i < at + DELETION_CHUNK; i++) {
        const value = values[i]!;
        if (indexTransient(value) || this.refs.release(indexMessageId(value), indexRefs(value))) ops.push({ type: 'del', key: messageKeyOfIndexValue(value) });
      }
      // the references are released: from here on the window must be finished (or left
      // to recovery, which counts them again)
      if (ops.length > 0 && !(await this.write(ops))) return null;
      if (values.length > DELETION_CHUNK) await sleep(DELETION_PACE_MS);
    }
    if (!(await this.retried(() => access.clear(first, upper)))) return null;
    job.from = upper;
    job.deleted += values.length;
    await sleep(DELETION_PACE_MS);
    return false;
  }

  /** `attempt` until it succeeds, with the write's backoff; false when the store stops first */
  private async retried(attempt: () => Promise<void>): Promise<boolean> {
    let delay = RETRY_MIN_MS;
    for (;;) {
      try {
        await attempt();
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

  /**
   * Writes one chunk beside the group commit (DurableLog.writeAside: not synced, ahead of
   * commits queued after it, which wait for this one small write at most). A failed write is
   * retried with the same operations (their references are released already) after a
   * backoff; false when the store stops first (recovery then finds what is left).
   */
  private write(ops: readonly BatchOp[]): Promise<boolean> {
    return this.retried(() => this.log.writeAside(ops));
  }

  /** resolves when the open batch has been written (or failed: the loop then waits again) */
  private commitOf(): Promise<void> {
    return new Promise<void>((resolve) => {
      const listener: CommitListener = { batchCommitted: () => resolve() };
      this.log.afterCommit(listener);
    });
  }
}

/** the least key above `key` */
function successor(key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(key.length + 1);
  key.copy(out, 0);
  out[key.length] = 0;
  return out;
}

/** The key DELETION_WINDOW seqs above an index key, in its priority level (index keys: kind, queue id, 255 - priority, seq). */
function windowEnd(first: Buffer): Buffer {
  const end = Buffer.allocUnsafe(first.length);
  first.copy(end, 0, 0, 6);
  writeU64(end, 6, readU64(first, 6) + DELETION_WINDOW);
  return end;
}
