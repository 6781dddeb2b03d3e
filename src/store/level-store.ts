import { mkdir, readdir, statfs } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Level } from 'level';
import type { Logger } from 'pino';
import { BackgroundDeletion } from './background-deletion.js';
import { DurableLog, type WriteInterceptor } from './durable-log.js';
import {
  FORMAT_KEY,
  FORMAT_VERSION,
  Prefix,
  UNKNOWN_BODY_SIZE,
  bindingKey,
  DamagedRecordError,
  decodeMessage,
  encodeIndexValue,
  DeferredMessage,
  exchangeKey,
  indexKey,
  indexKeyString,
  indexMessageId,
  indexRedelivered,
  indexRefs,
  indexTransient,
  indexExpiresAt,
  kindRange,
  messageKey,
  messageKeyString,
  priorityOfIndexKey,
  queueIndexRange,
  queueKey,
  seqOfIndexKey,
  vhostKey,
} from './keys.js';
import { recoverIndex } from './level-recovery.js';
import { SegmentSpill, SPILL_DIR } from './segment-spill.js';
import { BodyFiles, BODIES_DIR, BODY_FILE_THRESHOLD, isBodyPointer } from './body-files.js';
import { WriteBehind, type WriteBehindLimits } from './write-behind.js';
import { MessageRefs } from './message-refs.js';
import { upgradeStore } from './migrations.js';
import { quarantineRecords } from './quarantine.js';
import { batchWriter, REUSABLE_BATCH_BYTES, reusableBatch, type BatchOp, type Db, type ReusableBatch, type WriteBatch } from './native-batch.js';
import type {
  BindingRecord,
  CommitListener,
  EntryRecord,
  ExchangeRecord,
  MessageRecord,
  QueueIndexSummary,
  QueueRecord,
  RecoveryInfo,
  Store,
  StoredEntry,
  Topology,
} from './store.js';
import { StoreError } from './store-error.js';
import type { StoreCounts } from './clean-shutdown.js';
import { lockDataDir, type DirLock } from './dir-lock.js';
import { WriteMeter } from './write-meter.js';
import {
  decodeBindingRecord,
  decodeExchangeRecord,
  decodeQueueRecord,
  encodeBindingRecord,
  encodeExchangeRecord,
  encodeQueueRecord,
} from './topology-records.js';
import { isLevelDbFile } from './leveldb-format.js';
import { isWarrenEntry, StoreIntegrity, type IntegrityOptions } from './store-integrity.js';


/**
 * A key encoding for reads that return no keys: Buffer bounds go to LevelDB as they are, and
 * the (empty) keys LevelDB hands back come as strings, which need no ArrayBuffer each.
 */
const RANGE_ONLY_KEYS = { name: 'warren-range-only', format: 'utf8', encode: (key: Buffer): Buffer => key, decode: (key: string): string => key };

/**
 * LevelDB's memtable size (its default is 4 MiB). A write that fills the memtable while the
 * previous one is still being flushed to a table file waits for that flush. Under a
 * persistent flood (bench scenario `flood`: 1 KiB messages, ~40 MB/s) 4 MiB filled every
 * ~100 ms and group commits of 0.3-2 MB waited 200-700 ms behind flushes, which every
 * confirm on every other queue waited for too (bystander p99 ~500 ms). With 16 MiB the
 * flush finishes before the next one is due: p99 ~50 ms, the flood itself ~30 % faster.
 * It costs up to two memtables of native memory and a longer log to replay after a crash.
 */
export const WRITE_BUFFER_SIZE = 16 * 1024 * 1024;
export interface LevelStoreOptions extends IntegrityOptions {
  /** the write-behind's high and low marks (publisher flow control); default DEFAULT_WRITE_BEHIND */
  readonly writeBehind?: WriteBehindLimits;
  /** big message values to body files (body-files.ts); default true. Values already there are read either way. */
  readonly bodyFiles?: boolean;
  /** the size past which a body file takes no more appends; default BODY_FILE_SIZE (64 MiB) */
  readonly bodyFileSize?: number;
  /** a sparse body file is compacted once none of its messages was deleted for this long; default 5 s */
  readonly bodyCompactAfterMs?: number;
  /**
   * The caller holds the data dir's lock (lockDataDir) for longer than the store is open, and
   * the store takes none of its own: a cluster node holds it from its start to its stop,
   * through its follower and leader roles (a second lock in the same process is refused).
   */
  readonly lockHeld?: boolean;
}

/** what a store whose caller holds the data dir's lock releases at its close: nothing */
const CALLER_HELD_LOCK: DirLock = { release: async () => {} };

const EMPTY = Buffer.alloc(0);
/** values moved per commit by body-file compaction */
const COMPACTION_CHUNK = 64;
const MiB = 1024 * 1024;
/**
 * Free space a reopen after a failed write waits for, beyond the operations kept for retry:
 * LevelDB replays its log into a new table as it opens, and the retried write needs its own room.
 */
const REOPEN_HEADROOM = 4 * MiB;

/** bytes an atomic write puts down (keys and values) */
/** the format record's value: FORMAT_VERSION, u32 BE */
function formatValue(): Buffer {
  const value = Buffer.allocUnsafe(4);
  value.writeUInt32BE(FORMAT_VERSION, 0);
  return value;
}

function opsBytes(ops: readonly BatchOp[]): number {
  let n = 0;
  for (const op of ops) n += op.key.length + (op.type === 'put' ? op.value.length : 0);
  return n;
}

async function freeBytes(dir: string): Promise<number | null> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

interface DamagedEntry {
  readonly key: Buffer;
  readonly ks: string;
  readonly messageId: number;
  readonly refs: number;
  readonly seq: number;
  /** the message value as stored; null when it is missing */
  readonly value: Buffer | null;
  readonly reason: string;
}

function keyString(key: Buffer): string {
  return key.toString('latin1');
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The durable store: LevelDB through `level`, binary order-preserving keys (keys.ts), made
 * of separate parts:
 *   - the durable log (durable-log.ts): the group commit every durable write goes through,
 *     with its write seam (WriteInterceptor, for replication) before the local write,
 *     writeOps (native-batch.ts: the native batch freed when the write completes);
 *   - the write-behind (write-behind.ts): what was handed over and not yet written, for
 *     publisher flow control; the write meter (write-meter.ts): the same bytes for the disk
 *     alarm;
 *   - the bookkeeping of ids and shared bodies (message-refs.ts);
 *   - background deletion of deleted and purged queues' entries (background-deletion.ts);
 *   - recovery's index scan (level-recovery.ts);
 *   - the paging spill for transient messages (segment-spill.ts), outside LevelDB;
 *   - integrity around open and close (store-integrity.ts: file checks, the start's
 *     snapshot, the clean-shutdown record and its counts, quarantine).
 *
 * Cancel-out: a delete of a key put in the same open batch removes the put only when the
 * key cannot exist elsewhere (on disk or in flight):
 *   - a message: ids are never reused and a message is put once;
 *   - an index entry whose message was put in the same open batch (the entry is new).
 * Every other delete (topology, an entry updated in place, a key put in the in-flight batch)
 * is written as a delete. Callers must not re-point an existing entry to a newly put message.
 *
 * readEntries reads what is written: callers wait for the batch holding what they need
 * (isCommitted / afterCommit) instead of the store merging pending operations into reads.
 */
export class LevelStore implements Store {
  private db: Db | null = null;
  private writer: WriteBatch | null = null;
  /** writeLevel's native batch, reused while the handle stays the same (native-batch.ts) */
  private reused: { db: Db; batch: ReusableBatch | null; busy: boolean } | null = null;
  /**
   * The last local write failed. LevelDB keeps a failed write's error (its "background
   * error") and fails every later write with it until the database is reopened: the next
   * write reopens it first (reopenAfterWriteError).
   */
  private writeError: Error | null = null;
  /** a reopen after a failed write is under way: reads wait for it */
  private reopening: Promise<void> | null = null;
  /** page-in and deletion reads running on the current handle (a reopen lets them finish first) */
  private readsInFlight = 0;
  private readsIdle: Array<() => void> = [];
  /** reads waiting for the database to be open again */
  private dbWaiters: Array<() => void> = [];
  /** message and queue ids, shared-body reference counts */
  private readonly refs = new MessageRefs();
  /** durable queues' names by store id, for logs */
  private readonly queueNames = new Map<number, { vhost: string; name: string }>();
  /** index keys of messages moved to quarantine/ (skipped by reads until their deletion is written) */
  private readonly quarantined = new Set<string>();
  private quarantinedCount = 0;
  private readonly log: DurableLog;
  private readonly deletion: BackgroundDeletion;
  /** bytes accepted and not yet written (the disk alarm counts them) */
  readonly writeMeter = new WriteMeter();
  private lock: DirLock | null = null;
  private integrity: StoreIntegrity | null = null;
  readonly writeBehind: WriteBehind;
  /** transient pages: segment files under <data dir>/spill, never fsynced, wiped at open */
  readonly spill: SegmentSpill;
  /** big message values: append-only files under <data dir>/bodies, pointers in LevelDB */
  readonly bodies: BodyFiles;
  /** a synced write was asked for, for the body files (writeLocal) */
  private syncAsked = false;
  /** the body-file compaction running, if any */
  private compaction: Promise<void> | null = null;

  constructor(
    private readonly dataDir: string,
    private readonly logger: Logger,
    private readonly options: LevelStoreOptions = {},
  ) {
    const writeBehind = (this.writeBehind = new WriteBehind(options.writeBehind));
    this.spill = new SegmentSpill(join(dataDir, SPILL_DIR), logger, writeBehind, this.writeMeter);
    this.bodies = new BodyFiles(join(dataDir, BODIES_DIR), logger, { appends: options.bodyFiles, fileSize: options.bodyFileSize, compactAfterMs: options.bodyCompactAfterMs });
    this.log = new DurableLog(
      {
        writeBatch: (ops, options) => this.writeLocal(ops, options),
        backlogChanged: (bytes, ops) => writeBehind.durableBacklog(bytes, ops),
        backlogHigh: writeBehind.limits.durableHigh,
        backlogOpsHigh: writeBehind.limits.durableOpsHigh ?? Infinity,
        // values the body files take are written there from their parts (the body is not copied again)
        partsFrom: options.bodyFiles === false ? Infinity : BODY_FILE_THRESHOLD,
        // the format record, rewritten as it is
        syncMark: { type: 'put', key: FORMAT_KEY, value: formatValue() },
        meter: this.writeMeter,
      },
      logger,
    );
    const log = this.log;
    this.deletion = new BackgroundDeletion(this.log, this.refs, (range) => this.readRange(range), logger, {
      get local() {
        return !log.intercepted;
      },
      firstKey: (from, lt) => this.firstKeyOf(from, lt),
      values: (gte, lt) => this.readValues(gte, lt),
      clear: (gte, lt) => this.clearRange(gte, lt),
    });
  }

  // ------------------------------------------------------------------ lifecycle

  async open(): Promise<void> {
    if (this.db !== null) return;
    await this.openWith(null);
  }

  /**
   * Opens the store on a LevelDB handle of its data dir that this process holds open and
   * has been writing until now (a cluster follower promoted to leader: it applied every
   * record to this database and never let go of it). The start's damage checks
   * (store-integrity.ts: every table's blocks and every write-ahead log read back, the
   * snapshot, the record checks) are about files a crash, a disk or another process left
   * behind; here there was no stop to leave anything, and the checks would read the whole
   * store again while clients wait for the new leader (about 0.5 s at 110 MB of tables,
   * growing with the store). Closing and reopening the handle would also replay up to a
   * memtable's worth of LevelDB's log. The format record is checked as at every open.
   * A handle it refuses outright (not open, not on this data dir, the store open already) is
   * left as it was; once accepted the store owns it: its close, or a failure, closes it.
   */
  async openOn(db: Db): Promise<void> {
    if (this.db !== null) throw new StoreError('the store is open already');
    if (db.status !== 'open') throw new StoreError(`openOn needs an open LevelDB handle (it is ${db.status})`);
    const location = (db as { location?: unknown }).location;
    if (typeof location !== 'string' || resolve(location) !== resolve(this.dataDir)) {
      throw new StoreError(`openOn needs a handle on ${this.dataDir}, not on ${String(location)}`);
    }
    await this.openWith(db);
  }

  /** `held`: an open handle to adopt (openOn), or null to open the directory with every check */
  private async openWith(held: Db | null): Promise<void> {
    const dir = this.dataDir;
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      await held?.close().catch(() => {});
      throw new StoreError(`cannot create data directory ${dir}: ${toError(e).message}`, { cause: e });
    }
    let fresh = false;
    if (held === null) {
      const existing = (await readdir(dir)).filter((name) => !isWarrenEntry(name));
      fresh = !existing.some(isLevelDbFile);
      // LevelDB would happily create its files among someone else's: refuse instead
      if (existing.length > 0 && fresh) {
        throw new StoreError(`data directory ${dir} is not empty and is not a Warren store; refusing to use it`);
      }
    }
    let lock: DirLock;
    try {
      lock = this.options.lockHeld === true ? CALLER_HELD_LOCK : await lockDataDir(dir);
    } catch (e) {
      await held?.close().catch(() => {});
      throw e;
    }
    const integrity = new StoreIntegrity(dir, this.logger, { forceRecovery: this.options.forceRecovery });
    let db: Db | null = held;
    try {
      if (held === null) {
        if (!fresh) await integrity.beforeOpen();
        db = await this.openDb(dir);
        // counts are compared before an upgrade may rewrite anything (a failed upgrade puts the directory back too)
        if (!fresh) await integrity.afterOpen(db);
      }
      await this.checkFormat(db!, dir);
      await this.spill.open().catch((e: unknown) => {
        throw new StoreError(`cannot create the paging spill in ${dir}: ${toError(e).message}`, { cause: e });
      });
      await this.bodies.load(db!).catch((e: unknown) => {
        throw new StoreError(`cannot read the body files in ${join(dir, BODIES_DIR)}: ${toError(e).message}`, { cause: e });
      });
    } catch (e) {
      await db?.close().catch(() => {});
      await integrity.failed().catch((err: unknown) => this.logger.error({ err, dataDir: dir }, 'store: could not put the data directory back as it was'));
      await lock.release().catch(() => {});
      throw e;
    }
    this.db = db;
    this.writer = batchWriter(db!);
    this.lock = lock;
    this.integrity = integrity;
    this.logger.info({ dataDir: dir, format: FORMAT_VERSION, adopted: held !== null }, 'store opened');
    // operations queued before open (or left by a failed close) are written now
    this.log.start();
  }

  /** a LevelDB handle on `dir` with the options the store runs with (a follower opens its store with it too) */
  static async openLevel(dir: string): Promise<Db> {
    const db: Db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open({ createIfMissing: true, errorIfExists: false, writeBufferSize: WRITE_BUFFER_SIZE });
    return db;
  }

  private async openDb(dir: string): Promise<Db> {
    try {
      return await LevelStore.openLevel(dir);
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      if (errorCode(cause) === 'LEVEL_LOCKED') {
        throw new StoreError(`data directory ${dir} is in use by another Warren process`, { cause: e });
      }
      const detail = cause instanceof Error ? cause.message : toError(e).message;
      throw new StoreError(`cannot open the store in ${dir}: ${detail}`, { cause: e });
    }
  }

  /** A new store records its format; an existing one must carry exactly ours (never wiped, never guessed). */
  private async checkFormat(db: Db, dir: string): Promise<void> {
    const format = await db.get(FORMAT_KEY);
    if (format === undefined) {
      const any = await db.keys({ limit: 1 }).all();
      if (any.length > 0) {
        throw new StoreError(`data directory ${dir} holds a LevelDB database that is not a Warren store (no format record); refusing to use it`);
      }
      await db.put(FORMAT_KEY, formatValue(), { sync: true });
      return;
    }
    const version = format.length === 4 ? format.readUInt32BE(0) : null;
    if (version !== null && version < FORMAT_VERSION && version >= 1) {
      await upgradeStore(db, version, FORMAT_VERSION, FORMAT_KEY);
      this.logger.info({ dataDir: dir, from: version, to: FORMAT_VERSION }, 'store upgraded in place');
      return;
    }
    if (version !== FORMAT_VERSION) {
      const found = version === null ? `an unreadable format record (0x${format.toString('hex')})` : `format ${version}`;
      throw new StoreError(`data directory ${dir} holds a Warren store of ${found}; this Warren reads format ${FORMAT_VERSION} only`);
    }
  }

  async close(): Promise<void> {
    // closed already, or never opened (a reopen that failed leaves no handle, and a write error)
    if (this.db === null && this.writeError === null) return;
    this.deletion.stop();
    let failure: unknown = null;
    try {
      await this.log.close();
    } catch (e) {
      failure = e;
    }
    await this.reopening?.catch(() => {});
    const db = this.db;
    // the last batches no one waited for were not synced: a clean close leaves everything on
    // disk (one synced write syncs LevelDB's whole log; the format record is rewritten as is).
    // The durable log's close syncs only what it writes, and nothing when it is intercepted.
    if (failure === null && db !== null && this.log.unsynced) {
      try {
        await db.put(FORMAT_KEY, formatValue(), { sync: true });
        this.log.unsynced = false;
      } catch (e) {
        failure = e;
      }
    }
    // a clean close records what the store holds, for the next start to compare
    let counts: StoreCounts | null = null;
    if (failure === null && db !== null) {
      counts = await this.integrity!.countForShutdown(db).catch((err: unknown) => {
        this.logger.warn({ err }, 'store: could not count the store at shutdown; the next start will not compare counts');
        return null;
      });
    }
    this.db = null;
    this.writer = null;
    this.writeError = null;
    this.wakeDbWaiters();
    await this.spill.close();
    await this.bodies.close().catch((err: unknown) => this.logger.warn({ err }, 'store: closing the body files failed'));
    await db?.close().catch((err: unknown) => this.logger.warn({ err }, 'store: closing LevelDB failed'));
    // a store closed without a recovery still holds the start's snapshot
    await this.integrity!.opened().catch((err: unknown) => this.logger.warn({ err }, 'store: could not remove the snapshot taken at the start'));
    if (counts !== null) {
      await this.integrity!.writeCleanShutdown(counts).catch((err: unknown) =>
        this.logger.warn({ err }, 'store: could not write the clean-shutdown record; the next start will not compare counts'),
      );
    }
    await this.lock?.release();
    this.lock = null;
    if (failure !== null) {
      throw new StoreError(`store closed with operations that could not be written: ${toError(failure).message}`, { cause: failure });
    }
  }

  // ------------------------------------------------------------------ a failed write: reopen

  /**
   * The durable log's local write. After a failed write the database is reopened first:
   * LevelDB would fail every write with the first error (ENOSPC, EIO) until then, even once
   * the disk has room again. The kept operations (the durable log's retry) then go through.
   */
  private async writeLocal(ops: readonly BatchOp[], options: { sync: boolean }, reuse = false): Promise<void> {
    if (this.writeError !== null) await this.reopenAfterWriteError(opsBytes(ops));
    const db = this.requireDb();
    const bodies = this.bodies;
    // big message values go to the body files first (body-files.ts); most writes have none
    const prepared = bodies.wants(ops) ? await bodies.prepare(ops, options.sync) : null;
    const written = prepared === null ? ops : prepared.ops;
    try {
      await this.writeOps(written, options, db, reuse);
    } catch (e) {
      if (this.db === db) this.writeError = toError(e);
      bodies.abandoned(prepared === null ? null : prepared.appended);
      throw e;
    }
    bodies.committed(written, prepared === null ? null : prepared.appended, options.sync);
    // files emptied by unsynced writes are removed only after a synced one: ask for it, or a
    // workload without confirms would never give their space back
    if (!options.sync && bodies.waitsForSyncedWrite && !this.syncAsked) {
      this.syncAsked = true;
      this.log
        .flush()
        .catch(() => {})
        .finally(() => (this.syncAsked = false));
    }
    if (this.compaction === null && bodies.nextCompaction(1) !== null) this.startCompaction();
  }

  private startCompaction(): void {
    this.compaction = this.compactBodies()
      .catch((err: unknown) => {
        if (this.db !== null) this.logger.warn({ err }, 'store: compacting a body file failed; it is tried again after a later write');
      })
      .finally(() => {
        this.compaction = null;
      });
  }

  /** resolves once no body-file compaction is running (tests) */
  async compactionsDone(): Promise<void> {
    while (this.compaction !== null) await this.compaction;
  }

  /**
   * Moves the live values out of sparse body files (BodyFiles.checkSparse): each is put
   * again under its message key through the group commit, whose write appends it to the
   * file of moved values (BodyFiles: survivors stay together) and points the key there;
   * the old file goes once its last value has moved.
   * A value whose delete is queued or being written is left alone (the delete frees it).
   * 64 values per commit, so that other writes are never held long.
   */
  private async compactBodies(): Promise<void> {
    const bodies = this.bodies;
    for (;;) {
      if (this.db === null || this.writeError !== null) return;
      const next = bodies.nextCompaction(COMPACTION_CHUNK);
      if (next === null) return;
      const db = await this.readableDb();
      let items: Array<{ messageId: number; pointer: Buffer }>;
      let values: Array<Buffer | Error>;
      try {
        const pointers = await db.getMany(next.ids.map((id) => messageKey(id)));
        items = next.ids.flatMap((messageId, i) => {
          const p = pointers[i];
          return p !== undefined && isBodyPointer(p) ? [{ messageId, pointer: p }] : [];
        });
        values = await bodies.read(items);
      } finally {
        this.readDone();
      }
      const log = this.log;
      let moved = 0;
      for (let i = 0; i < items.length; i++) {
        const id = items[i]!.messageId;
        const value = values[i]!;
        const k = messageKeyString(id);
        // unreadable: left for the read that quarantines it; deleted or changed meanwhile: nothing to move
        if (value instanceof Error || !bodies.isIn(next.file, id)) continue;
        if (log.open.ops.has(k) || log.inFlight?.ops.has(k) === true) continue;
        bodies.moveValue(id);
        log.set(k, value);
        moved++;
      }
      if (moved === 0) {
        bodies.skipCompaction(next.file);
        continue;
      }
      await this.flush();
    }
  }

  private reopenAfterWriteError(needed: number): Promise<void> {
    if (this.reopening === null) {
      this.reopening = this.reopen(needed).finally(() => {
        this.reopening = null;
        this.wakeDbWaiters();
      });
    }
    return this.reopening;
  }

  /**
   * Closes LevelDB and opens it again, in process, with the checks of a start (the files
   * against LevelDB's formats, a snapshot put back should the open fail, every topology
   * record decoding). The model's state (queues, unacked deliveries) and the durable log's
   * kept operations are untouched: nothing is read back, the next write just goes to the
   * new handle. While the disk has too little room for LevelDB to replay its log, the old
   * handle stays (reads go on) and the write fails again, to be retried.
   */
  private async reopen(needed: number): Promise<void> {
    const dir = this.dataDir;
    const free = await freeBytes(dir);
    if (free !== null && free < needed + REOPEN_HEADROOM) {
      throw new StoreError(`waiting for free disk space in ${dir} to reopen the store after a failed write`, { cause: this.writeError });
    }
    // reads on the old handle finish first; later ones wait for the new one
    while (this.readsInFlight > 0) await new Promise<void>((resolve) => this.readsIdle.push(resolve));
    const old = this.db;
    this.db = null;
    this.writer = null;
    if (old !== null) await old.close().catch((err: unknown) => this.logger.warn({ err, dataDir: dir }, 'store: closing LevelDB after a failed write failed'));
    const integrity = new StoreIntegrity(dir, this.logger, { forceRecovery: this.options.forceRecovery });
    let db: Db | null = null;
    try {
      await integrity.beforeOpen();
      db = await this.openDb(dir);
      await integrity.afterOpen(db);
      await integrity.opened();
    } catch (e) {
      await db?.close().catch(() => {});
      await integrity.failed().catch((err: unknown) => this.logger.error({ err, dataDir: dir }, 'store: could not put the data directory back as it was'));
      this.logger.error({ err: e, dataDir: dir }, 'store: reopening the database after a failed write failed; retried with the kept operations');
      throw e;
    }
    this.db = db;
    this.writer = batchWriter(db);
    const cause = this.writeError;
    this.writeError = null;
    this.logger.warn({ dataDir: dir, cause: cause?.message }, 'store: database reopened after a failed write; the kept operations are written again');
  }

  private wakeDbWaiters(): void {
    const waiters = this.dbWaiters;
    this.dbWaiters = [];
    for (const wake of waiters) wake();
  }

  /** The handle to read with: waits while a reopen is under way (or the last one failed). */
  private async readableDb(): Promise<Db> {
    while (this.reopening !== null || (this.db === null && this.writeError !== null)) {
      await new Promise<void>((resolve) => this.dbWaiters.push(resolve));
    }
    this.readsInFlight++;
    try {
      return this.requireDb();
    } catch (e) {
      this.readDone();
      throw e;
    }
  }

  private readDone(): void {
    if (--this.readsInFlight > 0) return;
    const idle = this.readsIdle;
    this.readsIdle = [];
    for (const wake of idle) wake();
  }

  // ------------------------------------------------------------------ topology

  async loadTopology(): Promise<Topology> {
    const db = this.requireDb();
    await this.flush();
    const vhosts: string[] = [];
    for (const key of await db.keys(kindRange(Prefix.Vhost)).all()) {
      vhosts.push(key.toString('utf8', 3, 3 + key.readUInt16BE(1)));
    }
    const exchanges: ExchangeRecord[] = [];
    for (const value of await db.values(kindRange(Prefix.Exchange)).all()) exchanges.push(decodeExchangeRecord(value));
    const queues: QueueRecord[] = [];
    for (const value of await db.values(kindRange(Prefix.Queue)).all()) queues.push(decodeQueueRecord(value));
    for (const q of queues) this.queueNames.set(q.id, { vhost: q.vhost, name: q.name });
    const bindings: BindingRecord[] = [];
    for (const value of await db.values(kindRange(Prefix.Binding)).all()) bindings.push(decodeBindingRecord(value));
    return { vhosts, exchanges, queues, bindings };
  }

  putVhost(name: string): void {
    this.set(vhostKey(name), EMPTY);
  }

  deleteVhost(name: string): void {
    this.set(vhostKey(name), null);
  }

  putRecord(key: Buffer, value: Buffer): void {
    this.set(key, value);
  }

  deleteRecord(key: Buffer): void {
    this.set(key, null);
  }

  async loadRecords(prefix: number): Promise<Array<[Buffer, Buffer]>> {
    const db = this.requireDb();
    await this.flush();
    return db.iterator(kindRange(prefix)).all();
  }

  putExchange(r: ExchangeRecord): void {
    this.set(exchangeKey(r.vhost, r.name), encodeExchangeRecord(r));
  }

  deleteExchange(vhost: string, name: string): void {
    this.set(exchangeKey(vhost, name), null);
  }

  putQueue(r: QueueRecord): void {
    this.queueNames.set(r.id, { vhost: r.vhost, name: r.name });
    this.set(queueKey(r.vhost, r.name), encodeQueueRecord(r));
  }

  allocateQueueId(): number {
    return this.refs.allocateQueueId();
  }

  deleteQueue(vhost: string, name: string, queueId: number): void {
    this.set(queueKey(vhost, name), null);
    // the entries go in the background once this batch (holding every earlier operation on
    // them) is durable; a crash before that leaves them without a record: recovery resumes
    this.deletion.schedule(queueId, this.log.openBatchId);
  }

  purgeQueue(record: QueueRecord, oldQueueId: number): void {
    this.putQueue(record);
    this.deletion.schedule(oldQueueId, this.log.openBatchId);
  }

  moveEntry(fromQueueId: number, e: EntryRecord): number {
    let refs = e.refs;
    if (refs <= 1) {
      // the old entry is deleted later, by the background deletion, which would free an
      // unshared body: both entries become shared ones (and so does the count, on disk too)
      refs = 2;
      this.refs.take(e.messageId, refs);
      this.writeEntry({ ...e, queueId: fromQueueId, refs });
    }
    this.refs.take(e.messageId, refs);
    this.writeEntry({ ...e, refs });
    return refs;
  }

  putBinding(r: BindingRecord): void {
    this.set(bindingKey(r), encodeBindingRecord(r));
  }

  deleteBinding(r: BindingRecord): void {
    this.set(bindingKey(r), null);
  }

  // ------------------------------------------------------------------ messages and index

  putMessage(record: MessageRecord): number {
    const messageId = this.refs.allocateMessageId();
    const log = this.log;
    log.open.messageSizes.set(messageId, record.body.length);
    // encoded when its batch is written: one consumed and settled before then never is
    log.set(messageKeyString(messageId), new DeferredMessage(record));
    return messageId;
  }

  private deleteMessage(messageId: number): void {
    const batch = this.log.open;
    const k = messageKeyString(messageId);
    // message ids are never reused and a message is put once: a put in the open batch
    // is the only version anywhere, so publish + ack in one window writes nothing. A value
    // written again by body-file compaction is not a first put (an older one is on disk):
    // its delete must be written.
    if (!batch.messageSizes.has(messageId) || !batch.ops.get(k) || !this.log.cancel(k)) this.log.set(k, null);
  }

  putEntry(e: EntryRecord): void {
    this.refs.take(e.messageId, e.refs);
    this.writeEntry(e);
  }

  updateEntry(e: EntryRecord): void {
    this.writeEntry(e);
  }

  private writeEntry(e: EntryRecord): void {
    const log = this.log;
    const bodySize = log.open.messageSizes.get(e.messageId) ?? log.inFlight?.messageSizes.get(e.messageId) ?? UNKNOWN_BODY_SIZE;
    log.set(indexKeyString(e.queueId, e.priority, e.seq), encodeIndexValue(e.messageId, e.refs, e.redelivered, e.transient, bodySize, e.expiresAt));
  }

  deleteEntry(queueId: number, priority: number, seq: number, messageId: number, refs: number): boolean {
    const log = this.log;
    const batch = log.open;
    const k = indexKeyString(queueId, priority, seq);
    const pending = batch.ops.get(k);
    // an entry of a message put in this same batch is new: nothing older exists to delete
    const cancelled = pending !== undefined && pending !== null && Buffer.isBuffer(pending) && batch.messageSizes.has(indexMessageId(pending));
    if (cancelled) log.cancel(k);
    else log.set(k, null);
    if (this.refs.release(messageId, refs)) this.deleteMessage(messageId);
    log.touch();
    return cancelled;
  }

  async readEntries(
    queueId: number,
    after: { priority: number; seq: number } | null,
    limit: number,
    until?: { priority: number; seq: number },
  ): Promise<StoredEntry[]> {
    // a queue being deleted has no entries, whatever the disk still holds
    if (limit <= 0 || this.deletion.has(queueId)) return [];
    const db = await this.readableDb();
    try {
      return await this.readEntriesFrom(db, queueId, after, limit, until);
    } finally {
      this.readDone();
    }
  }

  private async readEntriesFrom(
    db: Db,
    queueId: number,
    after: { priority: number; seq: number } | null,
    limit: number,
    until?: { priority: number; seq: number },
  ): Promise<StoredEntry[]> {
    const range = queueIndexRange(queueId);
    const upper = until === undefined ? { lt: range.lt } : { lte: indexKey(queueId, until.priority, until.seq), lt: range.lt };
    const lower = after === null ? { gte: range.gte } : { gt: indexKey(queueId, after.priority, after.seq) };
    const rows = await db.iterator({ ...lower, ...upper, limit }).all();
    if (rows.length === 0) return [];
    const messages: Array<Buffer | undefined | DamagedRecordError> = await db.getMany(rows.map(([, v]) => messageKey(indexMessageId(v))));
    const pointers = await this.readBodies(rows, messages);
    const out: StoredEntry[] = [];
    let damaged: DamagedEntry[] | null = null;
    for (let i = 0; i < rows.length; i++) {
      const [key, value] = rows[i]!;
      const ks = keyString(key);
      // already moved aside (its deletion may not be written yet)
      if (this.quarantined.has(ks)) continue;
      const m = messages[i];
      const messageId = indexMessageId(value);
      let message: MessageRecord;
      try {
        if (m === undefined) throw new DamagedRecordError('the message is missing (its index entry survived)');
        if (m instanceof Error) throw m;
        message = decodeMessage(m);
      } catch (e) {
        const stored = m instanceof Error ? pointers?.get(i) ?? null : m ?? null;
        (damaged ??= []).push({ key, ks, messageId, refs: indexRefs(value), seq: seqOfIndexKey(key), value: stored, reason: toError(e).message });
        continue;
      }
      out.push({
        queueId,
        priority: priorityOfIndexKey(key),
        seq: seqOfIndexKey(key),
        messageId,
        refs: indexRefs(value),
        redelivered: indexRedelivered(value),
        transient: indexTransient(value),
        expiresAt: indexExpiresAt(value),
        message,
      });
    }
    if (damaged !== null) await this.quarantineMessages(queueId, damaged);
    return out;
  }

  /**
   * Values kept in body files (pointers among `messages`) read in place; a value that cannot
   * be read becomes its DamagedRecordError. Returns the pointers replaced, by row (for
   * quarantine), or null when there were none.
   */
  private async readBodies(rows: ReadonlyArray<[Buffer, Buffer]>, messages: Array<Buffer | undefined | DamagedRecordError>): Promise<Map<number, Buffer> | null> {
    let pointers: Map<number, Buffer> | null = null;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (m instanceof Buffer && isBodyPointer(m)) (pointers ??= new Map()).set(i, m);
    }
    if (pointers === null) return null;
    const rowsOf = [...pointers.keys()];
    const got = await this.bodies.read(rowsOf.map((i) => ({ messageId: indexMessageId(rows[i]![1]), pointer: pointers!.get(i)! })));
    for (let k = 0; k < rowsOf.length; k++) messages[rowsOf[k]!] = got[k]!;
    return pointers;
  }

  /**
   * Messages that cannot be read (checksum mismatch, lengths that do not fit, missing) leave
   * the queue: each is written to quarantine/ (key and value as stored), then its index
   * entry is deleted and its reference released, and it is logged at error level naming
   * queue and message. The queue serves the others; nothing is read twice.
   */
  private async quarantineMessages(queueId: number, damaged: readonly DamagedEntry[]): Promise<void> {
    for (const d of damaged) this.quarantined.add(d.ks);
    this.quarantinedCount += damaged.length;
    const q = this.queueNames.get(queueId);
    const queue = q === undefined ? `queue #${queueId}` : `queue '${q.name}' in vhost '${q.vhost}'`;
    let file: string | null = null;
    try {
      file = await quarantineRecords(
        this.dataDir,
        damaged.map((d) => ({ what: `message ${d.messageId} (seq ${d.seq}) of ${queue}`, key: d.value === null ? d.key : messageKey(d.messageId), value: d.value, reason: d.reason })),
      );
    } catch (err) {
      // not kept aside: left in the store (skipped until the next start), never deleted
      this.logger.error({ err, queue: q?.name, vhost: q?.vhost, messages: damaged.map((d) => d.messageId) }, `store: ${damaged.length} unreadable messages of ${queue} could not be written to quarantine; skipped, left in the store`);
      return;
    }
    for (const d of damaged) {
      this.logger.error(
        { queue: q?.name, vhost: q?.vhost, queueId, messageId: d.messageId, seq: d.seq, reason: d.reason, file, quarantined: this.quarantinedCount },
        `store: message ${d.messageId} of ${queue} cannot be read (${d.reason}); moved to ${file}`,
      );
      this.log.set(d.ks, null);
      // a missing message has nothing left to release; a damaged one goes with its last reference
      if (d.value !== null && this.refs.release(d.messageId, d.refs)) this.deleteMessage(d.messageId);
    }
  }

  /** messages moved to quarantine/ since the store opened */
  get quarantinedMessages(): number {
    return this.quarantinedCount;
  }

  async recover(): Promise<RecoveryInfo> {
    const db = this.requireDb();
    await this.flush();
    // recovery's clean-ups go through the durable log's write seam like every other write
    const { queues, orphanQueues } = await recoverIndex(db, this.refs, (ops, options) => this.log.write(ops, options), this.logger, (items) => this.bodies.read(items));
    await this.verifyRecovered(queues);
    // body files nothing points to go once the start is accepted
    this.bodies.start();
    // deletions a crash interrupted: finished in the background
    for (const queueId of orphanQueues) this.deletion.schedule(queueId, 0);
    if (orphanQueues.length > 0) this.logger.info({ queues: orphanQueues.length }, 'store: resuming the deletion of deleted queues\' entries');
    this.deletion.start();
    return { queues };
  }

  /** What recovery found, compared with the clean-shutdown record (store-integrity.ts); a refusal undoes the start. */
  private async verifyRecovered(queues: readonly QueueIndexSummary[]): Promise<void> {
    const integrity = this.integrity;
    if (integrity === null) return;
    try {
      await integrity.afterRecovery(queues);
    } catch (e) {
      const db = this.db;
      // nothing is written after a refusal: the directory goes back as it was
      this.deletion.stop();
      await this.log.close().catch(() => {});
      this.db = null;
      this.writer = null;
      await this.spill.close();
      await db?.close().catch(() => {});
      await integrity.failed().catch((err: unknown) => this.logger.error({ err, dataDir: this.dataDir }, 'store: could not put the data directory back as it was'));
      await this.lock?.release().catch(() => {});
      this.lock = null;
      throw e;
    }
  }

  /** queues whose entries are still being deleted in the background */
  get pendingDeletions(): number {
    return this.deletion.pendingQueues;
  }

  /** resolves once no queue's entries are being deleted */
  deletionsDone(): Promise<void> {
    return this.deletion.whenIdle();
  }

  // ------------------------------------------------------------------ group commit

  get openBatchId(): number {
    return this.log.openBatchId;
  }

  isCommitted(batchId: number): boolean {
    return this.log.isCommitted(batchId);
  }

  afterCommit(listener: CommitListener): void {
    this.log.afterCommit(listener);
  }

  flush(): Promise<void> {
    return this.log.flush();
  }

  private set(key: Buffer, value: Buffer | null): void {
    this.log.set(keyString(key), value);
  }

  /**
   * Hands every later write of the store's data to `interceptor` first (the durable log's
   * seam: see WriteInterceptor in durable-log.ts); null removes it. Clustering replicates
   * through it.
   */
  interceptWrites(interceptor: WriteInterceptor | null): void {
    this.log.intercept(interceptor);
  }

  /**
   * The open LevelDB handle, for what works beside the store on its key layout: the
   * cluster leader applies the records its replicas committed to it and reads snapshots of
   * it for followers that catch up. The store's own writes never go around the durable log.
   */
  levelDb(): Db {
    return this.requireDb();
  }

  /**
   * For a snapshot of levelDb() (a cluster leader's, for a follower catching up): keeps every
   * body file in place until the returned function is called.
   */
  holdStoredValues(): () => void {
    return this.bodies.hold();
  }

  /** Rows read from levelDb() with their body-file pointers replaced by the values (a follower gets whole values). */
  resolveStoredValues(rows: Array<[Buffer, Buffer]>): Promise<Array<[Buffer, Buffer]>> {
    return this.bodies.resolve(rows);
  }

  /**
   * One atomic write straight to this node's LevelDB, past the durable log and its write
   * seam: for the cluster leader applying what its replicas committed (the data the seam
   * handed it). It goes to the current handle, and after a failed write reopens the
   * database first, as the store's own writes do. Writes of up to REUSABLE_BATCH_BYTES go
   * through one native batch reused from write to write (native-batch.ts: about half the
   * main-thread time per operation of batch_do, which was a leader's largest cost after GC);
   * the store's own writes keep batchWriter.
   */
  writeLevel(ops: readonly BatchOp[], options: { sync: boolean }): Promise<void> {
    return this.writeLocal(ops, options, true);
  }

  /**
   * The local write: one atomic write to this node's LevelDB (group commits, background
   * deletion chunks, and recovery's clean-ups, unless an interceptor applies them its
   * own way). The native write batch is released as soon as the write completes
   * (native-batch.ts).
   */
  protected async writeOps(ops: readonly BatchOp[], options: { sync: boolean }, db: Db, reuse = false): Promise<void> {
    const reused = reuse && db === this.db ? this.reusedBatch(db) : null;
    if (reused !== null && reused.batch !== null && !reused.busy && opsBytes(ops) <= REUSABLE_BATCH_BYTES) {
      const batch = reused.batch;
      reused.busy = true;
      try {
        for (const op of ops) {
          if (op.type === 'del') batch.del(op.key);
          else batch.put(op.key, Buffer.isBuffer(op.value) ? op.value : op.value.join());
        }
      } catch (err) {
        batch.clear();
        reused.busy = false;
        throw err;
      }
      try {
        await batch.write(options);
      } finally {
        reused.busy = false;
      }
      return;
    }
    const write = db === this.db && this.writer !== null ? this.writer : batchWriter(db);
    await write(ops, options);
  }

  private reusedBatch(db: Db): { db: Db; batch: ReusableBatch | null; busy: boolean } {
    if (this.reused === null || this.reused.db !== db) this.reused = { db, batch: reusableBatch(db), busy: false };
    return this.reused;
  }

  /** One chunk of index rows for the background deletion (protected: tests hold it to look at a deletion midway). */
  protected async readRange(range: { gt?: Buffer; gte?: Buffer; lt: Buffer; limit: number }): Promise<Array<[Buffer, Buffer]>> {
    const db = await this.readableDb();
    try {
      return await db.iterator(range).all();
    } finally {
      this.readDone();
    }
  }

  /** The first key of [from, lt) for the background deletion. */
  private async firstKeyOf(from: Buffer, lt: Buffer): Promise<Buffer | null> {
    const db = await this.readableDb();
    try {
      const keys = await db.keys({ gte: from, lt, limit: 1 }).all();
      return keys[0] ?? null;
    } finally {
      this.readDone();
    }
  }

  /** The values of one window of the background deletion (protected: tests hold it to look at a deletion midway). */
  protected async readValues(gte: Buffer, lt: Buffer): Promise<Buffer[]> {
    const db = await this.readableDb();
    try {
      // keys: false still makes classic-level return an (empty) key per row, as a Buffer
      // with its own ArrayBuffer when keys are Buffers; as a string it costs no ArrayBuffer
      const it = db.iterator({ gte, lt, keys: false, keyEncoding: RANGE_ONLY_KEYS } as unknown as Parameters<Db['iterator']>[0]);
      try {
        const rows = await it.all();
        const values: Buffer[] = new Array(rows.length);
        for (let i = 0; i < rows.length; i++) values[i] = rows[i]![1] as Buffer;
        return values;
      } finally {
        await it.close();
      }
    } finally {
      this.readDone();
    }
  }

  /** LevelDB's own range delete (unsynced, as a write aside is; made durable by the next synced commit). */
  private async clearRange(gte: Buffer, lt: Buffer): Promise<void> {
    const db = await this.readableDb();
    try {
      await db.clear({ gte, lt });
    } finally {
      this.readDone();
    }
  }

  private requireDb(): Db {
    if (this.db === null) throw new StoreError('store is not open');
    return this.db;
  }
}
