import type { Logger } from 'pino';
import type { WriteInterceptor } from '../store/durable-log.js';
import { LevelStore, type LevelStoreOptions } from '../store/level-store.js';
import { wholeOps, type BatchOp } from '../store/native-batch.js';
import type { Op } from './record.js';
import { NotLeaderError } from './replication-leader.js';

export interface Replicator {
  /** resolves once the write is committed on the ISR and applied to this store */
  append(ops: readonly Op[]): Promise<void>;
}

/**
 * The leader's store: a LevelStore whose every write goes through replication, by way of
 * the durable log's write seam (WriteInterceptor in store/durable-log.ts). Each atomic write
 * the store makes (a group commit with the purge moves it carries, a chunk of a background
 * deletion, or one of recovery's clean-ups) becomes one record; the write resolves only
 * once the ISR has it and the leader applied it (LevelApplyTarget on levelDb()), so commit
 * listeners (confirms, declare-oks, tx.commit-ok) and page-in wait for the ISR without
 * knowing about it. Without a replicator (before the node leads, or once it stepped down)
 * writes fail with NotLeaderError, as a failing disk would: nothing reaches the local
 * LevelDB that the replicas have not committed.
 *
 * What the store writes while it opens (the format record, an in-place upgrade) is written
 * by every node alike and stays local (see docs/clustering.md).
 */
export class ReplicatedLevelStore extends LevelStore {
  replicator: Replicator | null = null;

  constructor(dataDir: string, logger: Logger, options: LevelStoreOptions = {}) {
    // the leader's local writes are not synced (the op log is): body files, which free a
    // file only after a synced write, would never be freed here; values stay in LevelDB
    super(dataDir, logger, { ...options, bodyFiles: false });
    const replicate: WriteInterceptor = { write: (ops) => this.replicate(ops) };
    this.interceptWrites(replicate);
  }

  private replicate(ops: readonly BatchOp[]): Promise<void> {
    const r = this.replicator;
    if (r === null) return Promise.reject(new NotLeaderError('this node is not the leader'));
    return r.append(wholeOps(ops));
  }
}
