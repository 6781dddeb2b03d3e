import type { Level } from 'level';
import { LevelStore } from '../store/level-store.js';
import type { Op } from './record.js';
import { NotLeaderError } from './replication-leader.js';

type Db = Level<Buffer, Buffer>;

export interface Replicator {
  /** resolves once the write is committed on the ISR and applied to this store */
  append(ops: readonly Op[]): Promise<void>;
}

/**
 * The leader's store: a LevelStore whose every atomic write goes through replication. The
 * store's group-commit batch (and each chunk of a queue clear) becomes one record; the write
 * resolves only once the ISR has it and it was applied, so commit listeners (confirms,
 * declare-oks, tx.commit-ok) wait for the ISR without knowing about it.
 *
 * Seam, until the store restructuring (#9) lands: LevelStore.writeOps is the one place a
 * batch reaches LevelDB; recover()'s own drops and the format record are still written
 * directly (the format record is written by every node alike; see docs/clustering.md).
 */
export class ReplicatedLevelStore extends LevelStore {
  replicator: Replicator | null = null;

  protected override async writeOps(ops: readonly Op[], _options: { sync: boolean }, _db: Db): Promise<void> {
    const r = this.replicator;
    if (r === null) throw new NotLeaderError('this node is not the leader');
    await r.append(ops);
  }

  /** the open LevelDB handle, where the replicator applies committed records and takes snapshots */
  levelDb(): Db {
    const db = (this as unknown as { db: Db | null }).db;
    if (db === null) throw new Error('store is not open');
    return db;
  }
}
