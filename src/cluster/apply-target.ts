import type { Level } from 'level';
import { batchWriter, REUSABLE_BATCH_BYTES, reusableBatch, type ReusableBatch, type WriteBatch } from '../store/native-batch.js';
import { decodeRecord, forEachOp, type Op } from './record.js';

type Db = Level<Buffer, Buffer>;

/** A consistent view of a store at one applied position, read in chunks (snapshot catch-up). */
export interface StoreSnapshot {
  entries(chunk: number): AsyncIterable<[Buffer, Buffer][]>;
  close(): Promise<void>;
}

/**
 * Where committed records go: the node's store. On a follower it is the store's LevelDB
 * opened directly; on the leader it is the LevelDB of its open store (LevelStore.levelDb()),
 * which the store's own writes reach only through replication (see replicated-store.ts).
 * Records hold blind puts and deletes: applying one twice is harmless.
 */
/** a write built ahead of time (while the ISR acks), written once it commits */
export interface PreparedWrite {
  write(): Promise<void>;
  /** frees it unwritten (leadership lost before it committed) */
  discard(): void;
}

export interface ApplyTarget {
  apply(ops: readonly Op[]): Promise<void>;
  /** applies encoded records (record.ts), their ops in order, in one atomic write */
  applyRecords(records: readonly Buffer[]): Promise<void>;
  /** builds the write of `ops` without writing anything; written later in seq order */
  prepare(ops: readonly Op[]): PreparedWrite;
  /** a view of everything applied so far; called only between two applies */
  snapshot(): StoreSnapshot;
  /** snapshot install on a follower: the store is emptied, then refilled */
  clear(): Promise<void>;
  putMany(entries: readonly [Buffer, Buffer][]): Promise<void>;
}

/**
 * Where a LevelApplyTarget writes and reads. On the leader it is its open store, asked at
 * every use: the store may close and reopen its LevelDB in process (after a failed write), so
 * a handle kept from earlier could be a closed one; writes then go through the store's own
 * local write (which reopens first after a failure). A follower, which opens the LevelDB
 * itself, passes the handle.
 */
export interface LevelSource {
  /** the current handle */
  levelDb(): Db;
  /** one atomic write to it */
  writeLevel(ops: readonly Op[], options: { sync: boolean }): Promise<void>;
  /** a native batch reused for small writes (native-batch.ts), when the source offers one */
  reusable?: ReusableBatch | null;
  /**
   * For a store that keeps some values outside LevelDB (body files: a pointer under the key):
   * keeps them in place while a snapshot is read, and reads them back into its rows, so a
   * follower gets whole values.
   */
  holdStoredValues?(): () => void;
  resolveStoredValues?(rows: Array<[Buffer, Buffer]>): Promise<Array<[Buffer, Buffer]>>;
}

/** a LevelSource over a handle this code opened and owns (the native write path: native-batch.ts) */
export function levelHandle(db: Db): LevelSource {
  const write: WriteBatch = batchWriter(db);
  return { levelDb: () => db, writeLevel: write, reusable: reusableBatch(db) };
}

/**
 * Applies records to a LevelDB with one atomic write each (not synced: the op log is),
 * through the store's native write path (native-batch.ts: the native batch is freed when the
 * write completes, not when V8 collects it).
 */
export class LevelApplyTarget implements ApplyTarget {
  private readonly source: LevelSource;

  constructor(source: Db | LevelSource) {
    this.source = isLevelSource(source) ? source : levelHandle(source);
  }

  async apply(ops: readonly Op[]): Promise<void> {
    if (ops.length === 0) return;
    await this.source.writeLevel(ops, { sync: false });
  }

  /**
   * A follower's apply: records of up to REUSABLE_BATCH_BYTES go op by op into the handle's
   * reused native batch, straight from the records' bytes (no op objects, no per-op property
   * lookups in N-API: half of what a follower's main thread spent in batch_do); larger groups,
   * and a store's handle (the leader's), are decoded and written as one array of ops.
   */
  async applyRecords(records: readonly Buffer[]): Promise<void> {
    const reusable = this.source.reusable ?? null;
    let bytes = 0;
    for (const r of records) bytes += r.length;
    if (reusable === null || bytes > REUSABLE_BATCH_BYTES) {
      const ops: Op[] = [];
      for (const r of records) for (const op of decodeRecord(r).ops) ops.push(op);
      return this.apply(ops);
    }
    const put = reusable.put;
    const del = reusable.del;
    try {
      for (const r of records) forEachOp(r, put, del);
    } catch (err) {
      reusable.clear();
      throw err;
    }
    await reusable.write({ sync: false });
  }

  /**
   * Nothing is built ahead: the native write path (one call with every op) frees its batch
   * when the write completes; a chained batch built early would hold native memory until V8
   * collects it, and measured no gain here.
   */
  prepare(ops: readonly Op[]): PreparedWrite {
    return {
      write: () => this.apply(ops),
      discard: () => {},
    };
  }

  snapshot(): StoreSnapshot {
    const source = this.source;
    const db = source.levelDb();
    // taken before the snapshot: no body file it may point to goes while it is read
    const release = source.holdStoredValues?.() ?? (() => {});
    const snap = db.snapshot();
    return {
      async *entries(chunk: number) {
        const it = db.iterator({ snapshot: snap });
        try {
          for (;;) {
            const rows = await it.nextv(chunk);
            if (rows.length === 0) return;
            yield source.resolveStoredValues === undefined ? rows : await source.resolveStoredValues(rows);
          }
        } finally {
          await it.close();
        }
      },
      close: async () => {
        try {
          await snap.close();
        } finally {
          release();
        }
      },
    };
  }

  async clear(): Promise<void> {
    await this.source.levelDb().clear();
  }

  async putMany(entries: readonly [Buffer, Buffer][]): Promise<void> {
    if (entries.length === 0) return;
    await this.source.writeLevel(
      entries.map(([key, value]) => ({ type: 'put' as const, key, value })),
      { sync: false },
    );
  }
}

function isLevelSource(x: Db | LevelSource): x is LevelSource {
  return typeof (x as Partial<LevelSource>).writeLevel === 'function' && typeof (x as Partial<LevelSource>).levelDb === 'function';
}
