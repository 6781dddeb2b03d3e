import type { Logger } from 'pino';
import type { DurableLog } from './durable-log.js';
import { indexMessageId, indexRefs, indexTransient, messageKeyString, queueIndexRange } from './keys.js';
import type { MessageRefs } from './message-refs.js';
import type { CommitListener } from './store.js';

/** Index entries deleted per step: one step rides one group commit. */
export const DELETION_CHUNK = 1024;

/** Reads up to `limit` index rows of a range, in key order (from the committed data). */
export type RangeReader = (range: { gt?: Buffer; gte?: Buffer; lt: Buffer; limit: number }) => Promise<Array<[Buffer, Buffer]>>;

interface Job {
  readonly queueId: number;
  /** the job may read once this batch is durable (it holds the queue's last operations) */
  afterBatch: number;
  /** last index key deleted so far */
  lastKey: Buffer | null;
  deleted: number;
}

/**
 * Deletes the index entries of deleted (and purged) queues in the background, a chunk per
 * group commit, releasing each entry's message reference as an ack would: deleting a queue
 * of any size costs the commits of other queues a few thousand small deletes each, never one
 * long write.
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
        // also paces the work: one chunk per group commit
        await this.commitOf();
        continue;
      }
      const range = queueIndexRange(job.queueId);
      const rows = await this.read(job.lastKey === null ? { gte: range.gte, lt: range.lt, limit: DELETION_CHUNK } : { gt: job.lastKey, lt: range.lt, limit: DELETION_CHUNK });
      if (this.stopped) break;
      if (rows.length === 0) {
        this.jobs.shift();
        this.queued.delete(job.queueId);
        if (job.deleted > 0) this.logger.info({ queueId: job.queueId, entries: job.deleted }, 'store: entries of a deleted queue removed');
        continue;
      }
      const log = this.log;
      for (const [key, value] of rows) {
        log.set(key.toString('latin1'), null);
        const messageId = indexMessageId(value);
        if (indexTransient(value) || this.refs.release(messageId, indexRefs(value))) log.set(messageKeyString(messageId), null);
      }
      job.lastKey = rows[rows.length - 1]![0];
      job.deleted += rows.length;
      job.afterBatch = log.openBatchId;
    }
    this.running = false;
    if (this.jobs.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
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
