import type { Logger } from 'pino';
import {
  Prefix,
  UNKNOWN_BODY_SIZE,
  indexBodySize,
  indexMessageId,
  indexRefs,
  indexTransient,
  kindRange,
  messageBodySize,
  messageIdOfKey,
  messageKey,
  priorityOfIndexKey,
  queueIdOfIndexKey,
  seqOfIndexKey,
} from './keys.js';
import type { MessageRefs } from './message-refs.js';
import type { BatchOp, Db, WriteBatch } from './native-batch.js';
import type { QueueIndexSummary } from './store.js';
import { isBodyPointer } from './body-files.js';
import { decodeQueueRecord } from './topology-records.js';

const RECOVERY_CHUNK = 1000;

interface LevelSummary {
  priority: number;
  count: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
}

interface QueueSummary {
  queueId: number;
  count: number;
  bytes: number;
  lastSeq: number;
  levels: LevelSummary[];
}

export interface IndexRecovery {
  readonly queues: QueueIndexSummary[];
  /** queue ids with index entries but no queue record: deletions a crash interrupted */
  readonly orphanQueues: number[];
}

/**
 * Scans the index once at startup: per-queue counts, bytes and last seqs, the shared-body
 * reference counts (entries of deleted queues included: their deletion, resumed in the
 * background, releases them), and the ids to continue from. Paged-out transient messages
 * written by format 3 and earlier are dropped (they never survive a restart).
 */
export async function recoverIndex(
  db: Db,
  refs: MessageRefs,
  write: WriteBatch,
  logger: Logger,
  readBodies?: (items: Array<{ messageId: number; pointer: Buffer }>) => Promise<Array<Buffer | Error>>,
): Promise<IndexRecovery> {
  const summaries = new Map<number, QueueSummary>();
  let maxQueueId = 0;
  for (const value of await db.values(kindRange(Prefix.Queue)).all()) {
    const id = decodeQueueRecord(value).id;
    summaries.set(id, { queueId: id, count: 0, bytes: 0, lastSeq: 0, levels: [] });
    if (id > maxQueueId) maxQueueId = id;
  }

  refs.resetShared();
  const orphanQueues: number[] = [];
  const unknownSize: { summary: QueueSummary; level: LevelSummary; messageId: number }[] = [];
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
        // keys sort by priority (highest first), then seq: levels come in delivery order
        const priority = priorityOfIndexKey(key);
        let level = current.levels[current.levels.length - 1];
        if (level === undefined || level.priority !== priority) {
          level = { priority, count: 0, bytes: 0, firstSeq: seq, lastSeq: seq };
          current.levels.push(level);
        }
        level.count++;
        level.lastSeq = seq;
        const size = indexBodySize(value);
        if (size === UNKNOWN_BODY_SIZE) unknownSize.push({ summary: current, level, messageId });
        else {
          current.bytes += size;
          level.bytes += size;
        }
      }
      if (dropOps.length >= RECOVERY_CHUNK) {
        await write(dropOps, { sync: false });
        dropOps = [];
      }
    }
  } finally {
    await it.close();
  }
  if (dropOps.length > 0) await write(dropOps, { sync: false });
  if (transientCount > 0) logger.info({ entries: transientCount }, 'store: dropped paged-out transient messages');

  // entries written without their body size at hand (rare): read those messages
  for (let i = 0; i < unknownSize.length; i += RECOVERY_CHUNK) {
    const part = unknownSize.slice(i, i + RECOVERY_CHUNK);
    const got: Array<Buffer | undefined | Error> = await db.getMany(part.map((u) => messageKey(u.messageId)));
    // values kept in body files (body-files.ts) are read from there
    const inFiles = part.flatMap((u, j) => (got[j] !== undefined && isBodyPointer(got[j] as Buffer) ? [j] : []));
    if (inFiles.length > 0 && readBodies !== undefined) {
      const values = await readBodies(inFiles.map((j) => ({ messageId: part[j]!.messageId, pointer: got[j] as Buffer })));
      inFiles.forEach((j, k) => (got[j] = values[k]));
    }
    for (let j = 0; j < part.length; j++) {
      const m = got[j];
      if (m === undefined || m instanceof Error || isBodyPointer(m)) continue;
      const size = messageBodySize(m);
      part[j]!.summary.bytes += size;
      part[j]!.level.bytes += size;
    }
  }

  const lastMessage = await db.keys({ ...kindRange(Prefix.Message), reverse: true, limit: 1 }).all();
  if (lastMessage.length > 0) maxMessageId = Math.max(maxMessageId, messageIdOfKey(lastMessage[0]!));
  refs.seen(maxMessageId, maxQueueId);

  const queues = [...summaries.values()].sort((a, b) => a.queueId - b.queueId);
  return { queues, orphanQueues };
}
