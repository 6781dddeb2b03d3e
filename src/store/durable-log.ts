import type { Logger } from 'pino';
import type { BatchOp, WriteBatch } from './native-batch.js';
import type { CommitListener } from './store.js';
import type { ValueParts } from './value-parts.js';
import type { WriteMeter } from './write-meter.js';

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;
/** what one operation costs in a batch besides its value (key, map slot, native copy) */
const OP_OVERHEAD = 64;

/**
 * A value encoded only when its batch is written: a message put and consumed within one
 * window (its operations cancel out) is never encoded, copied or allocated for. `length`
 * is the encoded size.
 */
export interface DeferredValue {
  readonly length: number;
  encode(): Buffer;
  /** the value in parts, not copied together (for values the write takes in parts: DurableLogHost.partsFrom) */
  encodeParts?(): ValueParts;
}

/** What a key is set to in a batch: a value, one to encode at the write, or null (delete). */
export type OpValue = Buffer | DeferredValue | null;

/**
 * One group-commit window. `ops` maps the key's bytes (as a latin1 string: one char per
 * byte, so string order is byte order) to the value to put, or null for a delete.
 */
export class Batch {
  readonly ops = new Map<string, OpValue>();
  /** body sizes of the messages put in this batch: index values carry them, and their entries are new */
  readonly messageSizes = new Map<number, number>();
  readonly listeners = new Set<CommitListener>();
  /** bytes the batch holds (values and a per-operation overhead): the write-behind */
  bytes = 0;

  constructor(readonly id: number) {}

  isEmpty(): boolean {
    return this.ops.size === 0 && this.listeners.size === 0;
  }
}

/** What the durable log writes through, and who hears how much it holds. */
export interface DurableLogHost {
  /** the local write: one atomic write to this node's LevelDB (LevelStore.writeOps) */
  writeBatch(ops: readonly BatchOp[], options: { sync: boolean }): Promise<void>;
  /** bytes and operations waiting in the open and in-flight batches changed (flow control) */
  backlogChanged(bytes: number, ops: number): void;
  /** the disk alarm's count of bytes accepted and not yet on disk: every batch's bytes, until written */
  readonly meter: WriteMeter;
  /** backlogChanged is called on every operation past this many bytes (else per commit) */
  readonly backlogHigh: number;
  /** ... or past this many operations */
  readonly backlogOpsHigh: number;
  /** deferred values of at least this many octets are written in parts when they can be (the body files take them so) */
  readonly partsFrom: number;
  /** an operation that changes nothing, written synced to make earlier unsynced batches durable */
  readonly syncMark: BatchOp;
}

/**
 * The seam for whoever must see every write of the store's data before it counts as done:
 * clustering (src/cluster/replicated-store.ts) replicates each batch to the in-sync
 * replicas. Installed on the durable log (LevelStore.interceptWrites), it is handed, in
 * order and one at a time, every atomic write the store makes after it opened:
 *   - each group commit (publishes, acks, topology, purge moves, the new store id a purge
 *     writes with its record);
 *   - each chunk of a background deletion, a write of its own beside the group commit
 *     (writeAside: not synced, in order with the commits);
 *   - recovery's own clean-ups (paged transient entries a restart drops).
 * `local` writes the batch to this node's LevelDB; an interceptor may call it, or apply the
 * batch its own way (the cluster leader applies what the replicas committed). The returned
 * promise settles the batch: resolved, it is durable (its commit listeners hear success,
 * page-in may read it); rejected, it failed as a disk error does (listeners get the error,
 * the operations stay queued and are retried). Writes made while the store opens (the format
 * record, an in-place upgrade, records a forced recovery quarantines) happen before any of
 * this and always go to the local LevelDB.
 */
export interface WriteInterceptor {
  write(ops: readonly BatchOp[], options: { sync: boolean }, local: WriteBatch): Promise<void>;
}

/** A write beside the group commit (writeAside), waiting for its turn or in flight. */
interface AsideWrite {
  readonly ops: readonly BatchOp[];
  /** the last batch holding operations queued before it: written before this goes */
  readonly after: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

function opBytes(value: OpValue): number {
  return OP_OVERHEAD + (value === null ? 0 : value.length);
}

function notifyCommitted(listener: CommitListener): void {
  listener.batchCommitted(null);
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * The durable log's group commit (models.md rule 8, LavinMQ's persister): operations only
 * set one key in the open batch. The first operation schedules a commit (setImmediate); the
 * commit takes the open batch, opens a new one and writes the old one with ONE atomic
 * write, synced when someone waits for it (commit(): a batch no one waits for is left to
 * the kernel, and the next one someone waits for syncs both). Operations arriving meanwhile accumulate in the new batch, written as soon
 * as the in-flight one finishes, so batches grow with load and no timer delays a quiet
 * broker.
 *
 * Write errors never throw to the model: the failed batch's listeners get the error, it is
 * logged once per distinct cause, and its operations are merged under the open batch and
 * retried with a backoff (newer operations on the same key win).
 */
export class DurableLog {
  private batchCount = 1;
  private openBatch = new Batch(this.batchCount);
  private flying: Batch | null = null;
  /** highest batch id whose operations are all durable */
  private committedUpTo = 0;
  /** a commit is queued (setImmediate, or the retry timer after a failure) */
  private scheduled = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_MIN_MS;
  private writing = false;
  private closing = false;
  /** the last batch written was not synced (no one waited for it): LevelStore.close syncs */
  unsynced = false;
  private loggedWriteError: string | null = null;
  private interceptor: WriteInterceptor | null = null;
  /** the write beside the group commit waiting for its turn (writeAside) */
  private aside: AsideWrite | null = null;
  /** it is being written: no commit starts meanwhile */
  private asideFlying: Promise<void> | null = null;
  private readonly runScheduledCommit = (): void => {
    this.scheduled = false;
    this.retryTimer = null;
    this.startCommit();
  };

  constructor(
    private readonly host: DurableLogHost,
    private readonly logger: Logger,
  ) {
    this.alertAt = host.backlogHigh;
    this.alertOpsAt = host.backlogOpsHigh;
  }

  /** Installs (or removes, with null) the write seam: see WriteInterceptor. */
  intercept(interceptor: WriteInterceptor | null): void {
    this.interceptor = interceptor;
  }

  /** whether writes go through an interceptor (they then reach more than this LevelDB) */
  get intercepted(): boolean {
    return this.interceptor !== null;
  }

  /** One atomic write of the store's data, through the interceptor when there is one. */
  write(ops: readonly BatchOp[], options: { sync: boolean }): Promise<void> {
    const interceptor = this.interceptor;
    if (interceptor === null) return this.host.writeBatch(ops, options);
    try {
      return interceptor.write(ops, options, this.local);
    } catch (e) {
      return Promise.reject(toError(e));
    }
  }

  private readonly local: WriteBatch = (ops, options) => this.host.writeBatch(ops, options);

  /** the batch operations go into now */
  get open(): Batch {
    return this.openBatch;
  }

  /** the batch being written, if any */
  get inFlight(): Batch | null {
    return this.flying;
  }

  get openBatchId(): number {
    return this.openBatch.id;
  }

  /** bytes waiting to be written (open and in-flight batches) */
  get backlogBytes(): number {
    return this.openBatch.bytes + (this.flying?.bytes ?? 0);
  }

  /** operations waiting to be written (open and in-flight batches) */
  get backlogOps(): number {
    return this.openBatch.ops.size + (this.flying?.ops.size ?? 0);
  }

  private reportBacklog(): void {
    this.host.backlogChanged(this.backlogBytes, this.backlogOps);
  }

  /**
   * Every operation queued while batch `batchId` (or an earlier one) was open is durable. The
   * open batch counts once everything before it is written and it holds nothing: it may never
   * be written at all (a reader waiting for it would wait forever, afterCommit answering at
   * once with nothing to commit).
   */
  isCommitted(batchId: number): boolean {
    if (batchId <= this.committedUpTo) return true;
    return batchId === this.openBatch.id && this.flying === null && this.openBatch.ops.size === 0 && this.committedUpTo === batchId - 1;
  }

  /** Writing may start (the db is open); operations queued before are written now. */
  start(): void {
    this.writing = true;
    this.closing = false;
    if (!this.openBatch.isEmpty()) this.touch();
  }

  /** Sets one key in the open batch (null deletes it); a value it replaces there no longer counts. */
  set(key: string, value: OpValue): void {
    const batch = this.openBatch;
    const replaced = batch.ops.get(key);
    batch.ops.set(key, value);
    if (replaced !== undefined) this.uncount(batch, replaced);
    const bytes = opBytes(value);
    batch.bytes += bytes;
    this.host.meter.queued(bytes);
    if (batch.bytes > this.alertAt || batch.ops.size > this.alertOpsAt) this.reportBacklog();
    this.touch();
  }

  /**
   * Takes a key's operation back out of the open batch (a message put and deleted within one
   * window writes nothing); false when the open batch holds none for it. Its bytes stop
   * counting at once: a window whose every operation cancels out is never written, so
   * nothing else would ever take them off the write-behind (publishers would stay held in
   * `flow`) or off the disk alarm's count.
   */
  cancel(key: string): boolean {
    const batch = this.openBatch;
    const value = batch.ops.get(key);
    if (value === undefined) return false;
    batch.ops.delete(key);
    this.uncount(batch, value);
    return true;
  }

  private uncount(batch: Batch, value: OpValue): void {
    const bytes = opBytes(value);
    batch.bytes -= bytes;
    this.host.meter.written(bytes);
    // with operations left the batch is written and its commit reports the backlog; without, report it now
    if (batch.ops.size === 0) this.reportBacklog();
  }

  /** open-batch size past which every operation reports the backlog (the high mark less what is in flight) */
  private alertAt: number;
  /** ... and its operation count */
  private alertOpsAt: number;

  afterCommit(listener: CommitListener): void {
    if (this.flying === null && this.openBatch.isEmpty()) {
      process.nextTick(notifyCommitted, listener);
      return;
    }
    this.openBatch.listeners.add(listener);
    this.touch();
  }

  /**
   * One atomic write beside the group commit, not synced, for work that may be lost in a
   * crash and done again (the background deletion: recovery finds what is left). It goes
   * once every operation queued before this call is written (the open batch is committed
   * first when it holds anything), and ahead of operations queued after it: a commit that
   * comes meanwhile waits for this one write, never for more. Its keys must be ones no
   * queued or later operation writes (then the order between the two cannot matter). It
   * goes through the write seam like every other write. Rejected when the write fails (the
   * caller retries) or the log closes first; one at a time.
   */
  writeAside(ops: readonly BatchOp[]): Promise<void> {
    if (this.aside !== null || this.asideFlying !== null) return Promise.reject(new Error('durable log: one write aside at a time'));
    if (this.closing || !this.writing) return Promise.reject(new Error('durable log: not writing'));
    return new Promise<void>((resolve, reject) => {
      const open = this.openBatch;
      this.aside = { ops, after: open.ops.size === 0 ? open.id - 1 : open.id, resolve, reject };
      if (!this.startAside()) this.touch();
    });
  }

  /** Starts the waiting write aside if its turn has come (nothing in flight, what it follows written). */
  private startAside(): boolean {
    const aside = this.aside;
    if (aside === null || this.flying !== null || this.asideFlying !== null || !this.writing) return false;
    if (!this.isCommitted(aside.after)) return false;
    this.aside = null;
    let written: Promise<void>;
    try {
      written = this.write(aside.ops, { sync: false });
    } catch (e) {
      written = Promise.reject(toError(e));
    }
    this.asideFlying = written.then(
      () => this.asideDone(aside, null),
      (e: unknown) => this.asideDone(aside, toError(e)),
    );
    return true;
  }

  private asideDone(aside: AsideWrite, error: Error | null): void {
    this.asideFlying = null;
    if (error === null) aside.resolve();
    else aside.reject(error);
    // commits that came meanwhile go now (or, when closing, close() writes them)
    if (!this.openBatch.isEmpty() && !this.scheduled && !this.closing) this.startCommit();
  }

  /** resolves when everything queued so far is durable */
  flush(): Promise<void> {
    // after unsynced batches, even with nothing queued a sync is owed (commit's syncOnly)
    if (this.flying === null && this.openBatch.isEmpty() && (!this.unsynced || this.interceptor !== null)) return Promise.resolve();
    // the retry timer is unref'd (a failing disk must not keep an idle process alive), but a
    // waiter needs it to run: otherwise a shutdown waiting here would just see Node exit 0
    this.retryTimer?.ref();
    return new Promise<void>((resolve, reject) => {
      this.openBatch.listeners.add({ batchCommitted: (error) => (error === null ? resolve() : reject(error)) });
      this.touch();
    });
  }

  /** Close: writes what is pending (retrying at once, not after a backoff); no further writes after it. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.scheduled = false;
    }
    // a write aside not started is dropped (its work is done again after the next open)
    const aside = this.aside;
    this.aside = null;
    aside?.reject(new Error('durable log: closed'));
    await this.asideFlying;
    try {
      const done = this.flush();
      this.startCommit();
      await done;
    } finally {
      this.writing = false;
    }
  }

  /** the first operation of a window schedules its commit; an in-flight commit picks it up when done */
  touch(): void {
    if (this.scheduled || this.flying !== null || this.asideFlying !== null || !this.writing) return;
    this.scheduled = true;
    setImmediate(this.runScheduledCommit);
  }

  private startCommit(): void {
    if (!this.writing || this.flying !== null || this.asideFlying !== null) return;
    if (this.openBatch.isEmpty()) {
      this.startAside();
      return;
    }
    const batch = this.openBatch;
    this.openBatch = new Batch(++this.batchCount);
    this.flying = batch;
    this.alertAt = this.host.backlogHigh - batch.bytes;
    this.alertOpsAt = this.host.backlogOpsHigh - batch.ops.size;
    // commit() catches the write's errors; this catches a bug in its bookkeeping (no unhandled rejection)
    this.commit(batch).catch((e: unknown) => this.logger.error({ err: e }, 'store: internal error after a commit (contained)'));
  }

  private async commit(batch: Batch): Promise<void> {
    let error: Error | null = null;
    try {
      // synced when someone waits for it (a confirm, an -ok, a flush, a page-in) or at the
      // close; a batch no one waits for is written for the kernel to flush, as RabbitMQ does
      // without confirms: a broker crash loses none of it, an OS crash may lose it
      const sync = batch.listeners.size > 0 || this.closing;
      // a listener hears that everything before it is durable: after unsynced batches, a
      // batch with nothing of its own still syncs (the host's harmless rewrite)
      const syncOnly = batch.ops.size === 0 && sync && this.unsynced && this.interceptor === null;
      if (batch.ops.size > 0 || syncOnly) {
        const ops: BatchOp[] = syncOnly ? [this.host.syncMark] : [];
        const partsFrom = this.host.partsFrom;
        for (const [k, v] of batch.ops) {
          const key = Buffer.from(k, 'latin1');
          if (v === null) ops.push({ type: 'del', key });
          else if (Buffer.isBuffer(v)) ops.push({ type: 'put', key, value: v });
          else ops.push({ type: 'put', key, value: v.length >= partsFrom && v.encodeParts !== undefined ? v.encodeParts() : v.encode() });
        }
        await this.write(ops, { sync });
        this.unsynced = !sync;
      }
    } catch (e) {
      error = toError(e);
    }
    this.flying = null;
    this.alertAt = this.host.backlogHigh;
    this.alertOpsAt = this.host.backlogOpsHigh;
    if (error === null) {
      this.committedUpTo = batch.id;
      this.host.meter.written(batch.bytes);
      this.writeSucceeded();
    } else this.writeFailed(batch, error);
    this.reportBacklog();
    for (const listener of batch.listeners) {
      try {
        listener.batchCommitted(error);
      } catch (e) {
        this.logger.error({ err: e }, 'store: commit listener threw');
      }
    }
    // a write aside waiting for this batch goes before the next one (which waits for it alone)
    if (error === null && !this.closing && this.startAside()) return;
    if (this.openBatch.isEmpty() || this.scheduled) return;
    if (error === null) this.startCommit();
    else if (!this.closing) {
      // back off so a full disk does not turn into a busy loop
      this.scheduled = true;
      this.retryTimer = setTimeout(this.runScheduledCommit, this.retryDelay);
      this.retryTimer.unref();
      this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    }
  }

  private writeSucceeded(): void {
    this.retryDelay = RETRY_MIN_MS;
    if (this.loggedWriteError !== null) {
      this.loggedWriteError = null;
      this.logger.info('store: writes succeed again');
    }
  }

  /** Requeues the failed work under the open batch (newer operations on a key win) and logs once per cause. */
  private writeFailed(batch: Batch, error: Error): void {
    const open = this.openBatch;
    // the requeued operations stay counted (the meter and the backlog); those a newer one replaces stop counting
    let dropped = 0;
    for (const [k, v] of batch.ops) {
      if (open.ops.has(k)) dropped += opBytes(v);
      else {
        open.ops.set(k, v);
        open.bytes += opBytes(v);
      }
    }
    if (dropped !== 0) this.host.meter.written(dropped);
    // nothing of the batch reached the disk: its messages are still new for cancel-out
    for (const [id, size] of batch.messageSizes) if (!open.messageSizes.has(id)) open.messageSizes.set(id, size);
    const cause = (error as { cause?: unknown }).cause;
    const id = `${errorCode(error) ?? ''}|${error.message}|${cause instanceof Error ? cause.message : ''}`;
    if (id !== this.loggedWriteError) {
      this.loggedWriteError = id;
      this.logger.error({ err: error, cause }, 'store: write failed; operations kept and retried');
    }
  }
}
