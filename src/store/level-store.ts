import { mkdir, readdir } from 'node:fs/promises';
import { Level } from 'level';
import type { Logger } from 'pino';
import {
  FORMAT_KEY,
  FORMAT_VERSION,
  Prefix,
  UNKNOWN_BODY_SIZE,
  bindingKey,
  decodeMessage,
  encodeIndexValue,
  encodeMessage,
  exchangeKey,
  indexBodySize,
  indexKey,
  indexKeyString,
  indexMessageId,
  indexRedelivered,
  indexRefs,
  indexTransient,
  indexExpiresAt,
  kindRange,
  messageBodySize,
  messageIdOfKey,
  messageKey,
  messageKeyString,
  priorityOfIndexKey,
  queueIdOfIndexKey,
  queueIndexRange,
  queueKey,
  seqOfIndexKey,
  vhostKey,
} from './keys.js';
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
import { upgradeStore } from './migrations.js';
import { MessageRefs } from './message-refs.js';
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

export type LevelStoreOptions = IntegrityOptions;

type Db = Level<Buffer, Buffer>;
type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

interface QueueSummary {
  queueId: number;
  count: number;
  bytes: number;
  lastSeq: number;
}

const EMPTY = Buffer.alloc(0);
const RECOVERY_CHUNK = 1000;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;

/**
 * One group-commit window. `ops` maps the key's bytes (as a latin1 string: one char per
 * byte, so string order is byte order) to the value to put, or null for a delete.
 */
class Batch {
  readonly ops = new Map<string, Buffer | null>();
  /** body sizes of the messages put in this batch: index values carry them, and their entries are new */
  readonly messageSizes = new Map<number, number>();
  /** queues whose whole index range is cleared after this batch's write */
  readonly clears = new Set<number>();
  readonly listeners = new Set<CommitListener>();
  /** message bytes put in this batch (for the disk alarm's bytes in flight) */
  bytes = 0;

  constructor(readonly id: number) {}

  isEmpty(): boolean {
    return this.ops.size === 0 && this.clears.size === 0 && this.listeners.size === 0;
  }
}

function keyString(key: Buffer): string {
  return key.toString('latin1');
}

function notifyCommitted(listener: CommitListener): void {
  listener.batchCommitted(null);
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The durable store: LevelDB through `level`, binary order-preserving keys (keys.ts).
 *
 * Group commit (models.md rule 8, LavinMQ's persister): the put/delete methods only set one
 * key in the open batch. The first operation schedules a commit (setImmediate); the commit
 * takes the open batch, opens a new one and writes the old one with ONE
 * `db.batch(ops, { sync: true })`. Operations arriving meanwhile accumulate in the new batch,
 * written as soon as the in-flight one finishes, so batches grow with load and no timer
 * delays a quiet broker.
 *
 * Cancel-out: a delete of a key put in the same open batch removes the put only when the
 * key cannot exist elsewhere (on disk or in flight):
 *   - a message: ids are never reused and a message is put once;
 *   - an index entry whose message was put in the same open batch (the entry is new).
 * Every other delete (topology, an entry updated in place, a key put in the in-flight batch)
 * is written as a delete. Callers must not re-point an existing entry to a newly put message.
 *
 * Write errors never throw to the model: the failed batch's listeners get the error, it is
 * logged once per distinct cause, and its operations are merged under the open batch and
 * retried with a backoff (newer operations on the same key win).
 *
 * readEntries sees operations still in the open and in-flight batches (merged over the db).
 */
export class LevelStore implements Store {
  private db: Db | null = null;
  private batchCount = 1;
  private open_ = new Batch(this.batchCount);
  private inFlight: Batch | null = null;
  /** a commit is queued (setImmediate, or the retry timer after a failure) */
  private scheduled = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_MIN_MS;
  private closing = false;
  private loggedWriteError: string | null = null;
  /** message and queue ids, shared-body reference counts */
  private readonly refs = new MessageRefs();
  private readonly runScheduledCommit = (): void => {
    this.scheduled = false;
    this.retryTimer = null;
    this.startCommit();
  };

  /** bytes accepted and not yet written (the disk alarm counts them) */
  readonly writeMeter = new WriteMeter();
  private lock: DirLock | null = null;
  private integrity: StoreIntegrity | null = null;

  constructor(
    private readonly dataDir: string,
    private readonly logger: Logger,
    private readonly options: LevelStoreOptions = {},
  ) {}

  // ------------------------------------------------------------------ lifecycle

  async open(): Promise<void> {
    if (this.db !== null) return;
    const dir = this.dataDir;
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new StoreError(`cannot create data directory ${dir}: ${toError(e).message}`, { cause: e });
    }
    const existing = (await readdir(dir)).filter((name) => !isWarrenEntry(name));
    const fresh = !existing.some(isLevelDbFile);
    // LevelDB would happily create its files among someone else's: refuse instead
    if (existing.length > 0 && fresh) {
      throw new StoreError(`data directory ${dir} is not empty and is not a Warren store; refusing to use it`);
    }
    const lock = await lockDataDir(dir);
    const integrity = new StoreIntegrity(dir, this.logger, { forceRecovery: this.options.forceRecovery });
    let db: Db | null = null;
    try {
      if (!fresh) await integrity.beforeOpen();
      db = await this.openDb(dir);
      // counts are compared before an upgrade may rewrite anything (a failed upgrade puts the directory back too)
      if (!fresh) await integrity.afterOpen(db);
      await this.checkFormat(db, dir);
    } catch (e) {
      await db?.close().catch(() => {});
      await integrity.failed().catch((err: unknown) => this.logger.error({ err, dataDir: dir }, 'store: could not put the data directory back as it was'));
      await lock.release().catch(() => {});
      throw e;
    }
    this.db = db;
    this.lock = lock;
    this.integrity = integrity;
    this.closing = false;
    this.logger.info({ dataDir: dir, format: FORMAT_VERSION }, 'store opened');
    // operations queued before open (or left by a failed close) are written now
    if (!this.open_.isEmpty()) this.touch();
  }

  private async openDb(dir: string): Promise<Db> {
    const db: Db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    try {
      await db.open({ createIfMissing: true, errorIfExists: false });
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      if (errorCode(cause) === 'LEVEL_LOCKED') {
        throw new StoreError(`data directory ${dir} is in use by another Warren process`, { cause: e });
      }
      const detail = cause instanceof Error ? cause.message : toError(e).message;
      throw new StoreError(`cannot open the store in ${dir}: ${detail}`, { cause: e });
    }
    return db;
  }

  /** A new store records its format; an existing one must carry exactly ours (never wiped, never guessed). */
  private async checkFormat(db: Db, dir: string): Promise<void> {
    const format = await db.get(FORMAT_KEY);
    if (format === undefined) {
      const any = await db.keys({ limit: 1 }).all();
      if (any.length > 0) {
        throw new StoreError(`data directory ${dir} holds a LevelDB database that is not a Warren store (no format record); refusing to use it`);
      }
      const value = Buffer.allocUnsafe(4);
      value.writeUInt32BE(FORMAT_VERSION, 0);
      await db.put(FORMAT_KEY, value, { sync: true });
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
    const db = this.db;
    if (db === null) return;
    this.closing = true;
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.scheduled = false;
    }
    let failure: unknown = null;
    try {
      const done = this.flush();
      this.startCommit();
      await done;
    } catch (e) {
      failure = e;
    }
    // a clean close records what the store holds, for the next start to compare
    let counts: StoreCounts | null = null;
    if (failure === null) {
      counts = await this.integrity!.countForShutdown(db).catch((err: unknown) => {
        this.logger.warn({ err }, 'store: could not count the store at shutdown; the next start will not compare counts');
        return null;
      });
    }
    this.db = null;
    await db.close();
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
    this.set(queueKey(r.vhost, r.name), encodeQueueRecord(r));
  }

  allocateQueueId(): number {
    return this.refs.allocateQueueId();
  }

  deleteQueue(vhost: string, name: string, queueId: number): void {
    const batch = this.open_;
    batch.ops.set(keyString(queueKey(vhost, name)), null);
    // the range clear runs after this batch's write, which holds every earlier operation on
    // the queue's entries: what it finds on disk is exactly what still holds a reference
    batch.clears.add(queueId);
    this.touch();
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
    const batch = this.open_;
    const value = encodeMessage(record);
    batch.ops.set(messageKeyString(messageId), value);
    batch.messageSizes.set(messageId, record.body.length);
    batch.bytes += value.length;
    this.writeMeter.queued(value.length);
    this.touch();
    return messageId;
  }

  private deleteMessage(messageId: number): void {
    const batch = this.open_;
    const k = messageKeyString(messageId);
    // message ids are never reused and a message is put once: a put in the open batch
    // is the only version anywhere, so publish + ack in one window writes nothing
    if (batch.ops.get(k)) batch.ops.delete(k);
    else batch.ops.set(k, null);
  }

  putEntry(e: EntryRecord): void {
    this.refs.take(e.messageId, e.refs);
    this.writeEntry(e);
  }

  updateEntry(e: EntryRecord): void {
    this.writeEntry(e);
  }

  private writeEntry(e: EntryRecord): void {
    const batch = this.open_;
    const bodySize = batch.messageSizes.get(e.messageId) ?? this.inFlight?.messageSizes.get(e.messageId) ?? UNKNOWN_BODY_SIZE;
    batch.ops.set(indexKeyString(e.queueId, e.priority, e.seq), encodeIndexValue(e.messageId, e.refs, e.redelivered, e.transient, bodySize, e.expiresAt));
    this.touch();
  }

  deleteEntry(queueId: number, priority: number, seq: number, messageId: number, refs: number): boolean {
    const batch = this.open_;
    const k = indexKeyString(queueId, priority, seq);
    const pending = batch.ops.get(k);
    // an entry of a message put in this same batch is new: nothing older exists to delete
    const cancelled = pending !== undefined && pending !== null && batch.messageSizes.has(indexMessageId(pending));
    if (cancelled) batch.ops.delete(k);
    else batch.ops.set(k, null);
    if (this.refs.release(messageId, refs)) this.deleteMessage(messageId);
    this.touch();
    return cancelled;
  }

  async readEntries(queueId: number, after: { priority: number; seq: number } | null, limit: number): Promise<StoredEntry[]> {
    const db = this.requireDb();
    if (limit <= 0) return [];
    const inFlight = this.inFlight;
    const open = this.open_;
    // a queue being deleted has no entries, whatever the disk still holds
    if (open.clears.has(queueId) || (inFlight !== null && inFlight.clears.has(queueId))) return [];

    const range = queueIndexRange(queueId);
    const lowerKey = after === null ? null : indexKey(queueId, after.priority, after.seq);
    const lower = keyString(lowerKey ?? range.gte);
    const upper = keyString(range.lt);

    // pending operations of this queue's range, the open batch over the in-flight one
    let overlay: Map<string, Buffer | null> | null = null;
    let pendingDeletes = 0;
    for (const batch of inFlight === null ? [open] : [inFlight, open]) {
      for (const [k, v] of batch.ops) {
        if (k.charCodeAt(0) !== Prefix.Index || k < lower || k >= upper || (lowerKey !== null && k === lower)) continue;
        overlay ??= new Map();
        overlay.set(k, v);
      }
    }
    if (overlay !== null) for (const v of overlay.values()) if (v === null) pendingDeletes++;

    // each pending delete can hide at most one db row: read that many more
    const readLimit = limit + pendingDeletes;
    const rows = await db.iterator(lowerKey === null ? { gte: range.gte, lt: range.lt, limit: readLimit } : { gt: lowerKey, lt: range.lt, limit: readLimit }).all();

    let keys: Buffer[];
    let values: Buffer[];
    if (overlay === null) {
      keys = rows.map((r) => r[0]);
      values = rows.map((r) => r[1]);
    } else {
      const merged = new Map<string, Buffer>();
      for (const [k, v] of rows) merged.set(keyString(k), v);
      // when the db had more rows than we read, a pending put past the last row read
      // could sort after rows we did not read: leave it for the next page
      const last = rows.length === readLimit ? keyString(rows[rows.length - 1]![0]) : null;
      for (const [k, v] of overlay) {
        if (v === null) merged.delete(k);
        else if (last === null || k <= last) merged.set(k, v);
      }
      const sorted = [...merged.keys()].sort().slice(0, limit);
      keys = sorted.map((k) => Buffer.from(k, 'latin1'));
      values = sorted.map((k) => merged.get(k)!);
    }
    if (keys.length > limit) {
      keys.length = limit;
      values.length = limit;
    }

    // the messages: pending puts first, then one getMany for the rest
    const hasPending = open.ops.size > 0 || (inFlight !== null && inFlight.ops.size > 0);
    const messages: (Buffer | null | undefined)[] = new Array(keys.length);
    const missingKeys: Buffer[] = [];
    const missingAt: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const mk = messageKey(indexMessageId(values[i]!));
      if (hasPending) {
        const ks = keyString(mk);
        const pending = open.ops.has(ks) ? open.ops.get(ks) : inFlight?.ops.get(ks);
        if (pending !== undefined) {
          messages[i] = pending;
          continue;
        }
      }
      missingKeys.push(mk);
      missingAt.push(i);
    }
    if (missingKeys.length > 0) {
      const got = await db.getMany(missingKeys);
      for (let j = 0; j < got.length; j++) messages[missingAt[j]!] = got[j];
    }

    const out: StoredEntry[] = [];
    let lost = 0;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const value = values[i]!;
      const m = messages[i];
      if (m === null || m === undefined) {
        lost++;
        continue;
      }
      out.push({
        queueId,
        priority: priorityOfIndexKey(key),
        seq: seqOfIndexKey(key),
        messageId: indexMessageId(value),
        refs: indexRefs(value),
        redelivered: indexRedelivered(value),
        transient: indexTransient(value),
        expiresAt: indexExpiresAt(value),
        message: decodeMessage(m),
      });
    }
    if (lost > 0) this.logger.warn({ queueId, lost }, 'store: index entries reference missing messages; skipped');
    return out;
  }

  async recover(): Promise<RecoveryInfo> {
    const db = this.requireDb();
    await this.flush();

    const summaries = new Map<number, QueueSummary>();
    let maxQueueId = 0;
    for (const value of await db.values(kindRange(Prefix.Queue)).all()) {
      const id = decodeQueueRecord(value).id;
      summaries.set(id, { queueId: id, count: 0, bytes: 0, lastSeq: 0 });
      if (id > maxQueueId) maxQueueId = id;
    }

    const refs = this.refs;
    refs.resetShared();
    const orphanQueues: number[] = [];
    const unknownSize: { summary: QueueSummary; messageId: number }[] = [];
    // paged-out transient messages (written by format 3 and earlier) never survive a restart
    let dropOps: BatchOp[] = [];
    let transientCount = 0;
    let maxMessageId = 0;
    let currentId = -1;
    let current: QueueSummary | undefined;
    const it = db.iterator(kindRange(Prefix.Index));
    try {
      for (;;) {
        const chunk = await it.nextv(RECOVERY_CHUNK);
        if (chunk.length === 0) break;
        for (const [key, value] of chunk) {
          const queueId = queueIdOfIndexKey(key);
          if (queueId !== currentId) {
            currentId = queueId;
            current = summaries.get(queueId);
            if (queueId > maxQueueId) maxQueueId = queueId;
            if (current === undefined) orphanQueues.push(queueId);
          }
          const messageId = indexMessageId(value);
          if (messageId > maxMessageId) maxMessageId = messageId;
          if (indexTransient(value)) {
            dropOps.push({ type: 'del', key }, { type: 'del', key: messageKey(messageId) });
            transientCount++;
            continue;
          }
          // entries of deleted queues hold their references until their deletion releases them
          refs.take(messageId, indexRefs(value));
          if (current === undefined) continue;
          const seq = seqOfIndexKey(key);
          if (seq > current.lastSeq) current.lastSeq = seq;
          current.count++;
          const size = indexBodySize(value);
          if (size === UNKNOWN_BODY_SIZE) unknownSize.push({ summary: current, messageId });
          else current.bytes += size;
        }
        if (dropOps.length >= RECOVERY_CHUNK) {
          await this.writeOps(dropOps, { sync: false }, db);
          dropOps = [];
        }
      }
    } finally {
      await it.close();
    }
    if (dropOps.length > 0) await this.writeOps(dropOps, { sync: false }, db);
    if (transientCount > 0) this.logger.info({ entries: transientCount }, 'store: dropped paged-out transient messages');

    // entries written without their body size at hand (rare): read those messages
    for (let i = 0; i < unknownSize.length; i += RECOVERY_CHUNK) {
      const part = unknownSize.slice(i, i + RECOVERY_CHUNK);
      const got = await db.getMany(part.map((u) => messageKey(u.messageId)));
      for (let j = 0; j < part.length; j++) {
        const m = got[j];
        if (m !== undefined) part[j]!.summary.bytes += messageBodySize(m);
      }
    }

    const lastMessage = await db.keys({ ...kindRange(Prefix.Message), reverse: true, limit: 1 }).all();
    if (lastMessage.length > 0) maxMessageId = Math.max(maxMessageId, messageIdOfKey(lastMessage[0]!));
    refs.seen(maxMessageId, maxQueueId);

    // index ranges of queues whose record is gone: a delete interrupted between the
    // record's (synced) delete and the range clear. Finish it.
    for (const queueId of orphanQueues) {
      await this.clearQueueIndex(db, queueId);
      this.logger.warn({ queueId }, 'store: removed index entries of a deleted queue');
    }

    const queues: QueueIndexSummary[] = [...summaries.values()].sort((a, b) => a.queueId - b.queueId);
    await this.verifyRecovered(queues);
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
      this.db = null;
      await db?.close().catch(() => {});
      await integrity.failed().catch((err: unknown) => this.logger.error({ err, dataDir: this.dataDir }, 'store: could not put the data directory back as it was'));
      await this.lock?.release().catch(() => {});
      this.lock = null;
      throw e;
    }
  }

  // ------------------------------------------------------------------ group commit

  get openBatchId(): number {
    return this.open_.id;
  }

  afterCommit(listener: CommitListener): void {
    if (this.inFlight === null && this.open_.isEmpty()) {
      process.nextTick(notifyCommitted, listener);
      return;
    }
    this.open_.listeners.add(listener);
    this.touch();
  }

  flush(): Promise<void> {
    if (this.inFlight === null && this.open_.isEmpty()) return Promise.resolve();
    // the retry timer is unref'd (a failing disk must not keep an idle process alive), but a
    // waiter needs it to run: otherwise a shutdown waiting here would just see Node exit 0
    this.retryTimer?.ref();
    return new Promise<void>((resolve, reject) => {
      this.open_.listeners.add({ batchCommitted: (error) => (error === null ? resolve() : reject(error)) });
      this.touch();
    });
  }

  private set(key: Buffer, value: Buffer | null): void {
    this.open_.ops.set(keyString(key), value);
    this.touch();
  }

  /** the first operation of a window schedules its commit; an in-flight commit picks it up when done */
  private touch(): void {
    if (this.scheduled || this.inFlight !== null || this.db === null) return;
    this.scheduled = true;
    setImmediate(this.runScheduledCommit);
  }

  private startCommit(): void {
    const db = this.db;
    if (db === null || this.inFlight !== null || this.open_.isEmpty()) return;
    const batch = this.open_;
    this.open_ = new Batch(++this.batchCount);
    this.inFlight = batch;
    // commit() catches the write's errors; this catches a bug in its bookkeeping (no unhandled rejection)
    this.commit(db, batch).catch((e: unknown) => this.logger.error({ err: e }, 'store: internal error after a commit (contained)'));
  }

  /**
   * One atomic LevelDB write. Uses the chained batch, which hands each op straight to
   * LevelDB's WriteBatch: the array form of db.batch() clones and re-validates every op
   * in JS (measured ~6x slower; a third of the broker's CPU under persistent publishing).
   */
  protected async writeOps(ops: readonly BatchOp[], options: { sync: boolean }, db: Db): Promise<void> {
    const chained = db.batch();
    try {
      for (const op of ops) {
        if (op.type === 'del') chained.del(op.key);
        else chained.put(op.key, op.value);
      }
    } catch (e) {
      await chained.close().catch(() => {});
      throw e;
    }
    await chained.write(options);
  }

  /**
   * Removes a deleted queue's index range, releasing each entry's reference (a body goes
   * with its last one); a plain range clear would orphan those bodies for good. Each chunk
   * deletes entries and bodies in one atomic write; a crash midway leaves index entries
   * without a queue record, which recovery finishes the same way.
   */
  private async clearQueueIndex(db: Db, queueId: number): Promise<void> {
    const it = db.iterator({ ...queueIndexRange(queueId) });
    try {
      for (;;) {
        const chunk = await it.nextv(RECOVERY_CHUNK);
        if (chunk.length === 0) break;
        const ops: BatchOp[] = [];
        for (const [key, value] of chunk) {
          ops.push({ type: 'del', key });
          const messageId = indexMessageId(value);
          if (indexTransient(value) || this.refs.release(messageId, indexRefs(value))) ops.push({ type: 'del', key: messageKey(messageId) });
        }
        await this.writeOps(ops, { sync: false }, db);
      }
    } finally {
      await it.close();
    }
  }

  private async commit(db: Db, batch: Batch): Promise<void> {
    let error: Error | null = null;
    let written = false;
    try {
      if (batch.ops.size > 0) {
        const ops: BatchOp[] = [];
        for (const [k, v] of batch.ops) {
          ops.push(v === null ? { type: 'del', key: Buffer.from(k, 'latin1') } : { type: 'put', key: Buffer.from(k, 'latin1'), value: v });
        }
        await this.writeOps(ops, { sync: true }, db);
      }
      written = true;
      for (const queueId of batch.clears) await this.clearQueueIndex(db, queueId);
    } catch (e) {
      error = toError(e);
    }
    this.inFlight = null;
    if (error === null || written) this.writeMeter.written(batch.bytes);
    if (error === null) {
      this.writeSucceeded();
    }
    else this.writeFailed(batch, error, written);
    for (const listener of batch.listeners) {
      try {
        listener.batchCommitted(error);
      } catch (e) {
        this.logger.error({ err: e }, 'store: commit listener threw');
      }
    }
    if (this.open_.isEmpty() || this.scheduled) return;
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
  private writeFailed(batch: Batch, error: Error, opsWritten: boolean): void {
    const open = this.open_;
    if (!opsWritten) {
      for (const [k, v] of batch.ops) if (!open.ops.has(k)) open.ops.set(k, v);
      // nothing of the batch reached the disk: its messages are still new for cancel-out
      for (const [id, size] of batch.messageSizes) if (!open.messageSizes.has(id)) open.messageSizes.set(id, size);
      open.bytes += batch.bytes;
    }
    for (const queueId of batch.clears) open.clears.add(queueId);
    const cause = (error as { cause?: unknown }).cause;
    const id = `${errorCode(error) ?? ''}|${error.message}|${cause instanceof Error ? cause.message : ''}`;
    if (id !== this.loggedWriteError) {
      this.loggedWriteError = id;
      this.logger.error({ err: error, cause }, 'store: write failed; operations kept and retried');
    }
  }

  private requireDb(): Db {
    if (this.db === null) throw new StoreError('store is not open');
    return this.db;
  }
}
