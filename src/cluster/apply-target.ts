import type { Level } from 'level';
import type { Op } from './record.js';

type Db = Level<Buffer, Buffer>;

/** A consistent view of a store at one applied position, read in chunks (snapshot catch-up). */
export interface StoreSnapshot {
  entries(chunk: number): AsyncIterable<[Buffer, Buffer][]>;
  close(): Promise<void>;
}

/**
 * Where committed records go: the node's store. On a follower it is the store's LevelDB
 * opened directly; on the leader it is the store's own write path (see replicated-store.ts).
 * Records hold blind puts and deletes: applying one twice is harmless.
 */
export interface ApplyTarget {
  apply(ops: readonly Op[]): Promise<void>;
  /** a view of everything applied so far; called only between two applies */
  snapshot(): StoreSnapshot;
  /** snapshot install on a follower: the store is emptied, then refilled */
  clear(): Promise<void>;
  putMany(entries: readonly [Buffer, Buffer][]): Promise<void>;
}

/** Applies records to a LevelDB handle with one atomic write each (not synced: the op log is). */
export class LevelApplyTarget implements ApplyTarget {
  constructor(private readonly db: Db) {}

  async apply(ops: readonly Op[]): Promise<void> {
    if (ops.length === 0) return;
    const batch = this.db.batch();
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value);
      else batch.del(op.key);
    }
    await batch.write();
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
    const batch = this.db.batch();
    for (const [k, v] of entries) batch.put(k, v);
    await batch.write();
  }
}
