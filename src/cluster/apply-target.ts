import type { Level } from 'level';
import { batchWriter, type WriteBatch } from '../store/native-batch.js';
import type { Op } from './record.js';

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
  /** builds the write of `ops` without writing anything; written later in seq order */
  prepare(ops: readonly Op[]): PreparedWrite;
  /** a view of everything applied so far; called only between two applies */
  snapshot(): StoreSnapshot;
  /** snapshot install on a follower: the store is emptied, then refilled */
  clear(): Promise<void>;
  putMany(entries: readonly [Buffer, Buffer][]): Promise<void>;
}

/**
 * Applies records to a LevelDB handle with one atomic write each (not synced: the op log is),
 * through the store's native write path (native-batch.ts: the native batch is freed when the
 * write completes, not when V8 collects it).
 */
export class LevelApplyTarget implements ApplyTarget {
  private readonly write: WriteBatch;

  constructor(private readonly db: Db) {
    this.write = batchWriter(db);
  }

  async apply(ops: readonly Op[]): Promise<void> {
    if (ops.length === 0) return;
    await this.write(ops, { sync: false });
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
    const db = this.db;
    const snap = db.snapshot();
    return {
      async *entries(chunk: number) {
        const it = db.iterator({ snapshot: snap });
        try {
          for (;;) {
            const rows = await it.nextv(chunk);
            if (rows.length === 0) return;
            yield rows;
          }
        } finally {
          await it.close();
        }
      },
      close: () => snap.close(),
    };
  }

  async clear(): Promise<void> {
    await this.db.clear();
  }

  async putMany(entries: readonly [Buffer, Buffer][]): Promise<void> {
    if (entries.length === 0) return;
    await this.write(
      entries.map(([key, value]) => ({ type: 'put' as const, key, value })),
      { sync: false },
    );
  }
}
