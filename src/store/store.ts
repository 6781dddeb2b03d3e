import type { FieldTable } from '../protocol/field-types.js';
import type { WriteMeter } from './write-meter.js';
import type { WriteBehind } from './write-behind.js';

/** Durable topology as the store records it (only durable things are written). */
export interface ExchangeRecord {
  readonly vhost: string;
  readonly name: string;
  readonly type: string;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: FieldTable;
}

export interface QueueRecord {
  readonly vhost: string;
  readonly name: string;
  /** store-wide id (u32) naming the queue in message index keys; assigned by the broker, never reused */
  readonly id: number;
  readonly autoDelete: boolean;
  readonly arguments: FieldTable;
}

export interface BindingRecord {
  readonly vhost: string;
  readonly source: string;
  readonly destination: string;
  readonly destinationKind: 'queue' | 'exchange';
  readonly routingKey: string;
  readonly arguments: FieldTable;
}

export interface Topology {
  readonly vhosts: readonly string[];
  readonly exchanges: readonly ExchangeRecord[];
  readonly queues: readonly QueueRecord[];
  readonly bindings: readonly BindingRecord[];
}

/** A persistent message's content, stored once however many queues hold it. */
export interface MessageRecord {
  readonly exchange: string;
  readonly routingKey: string;
  /** content-header property bytes exactly as published */
  readonly rawProperties: Buffer;
  readonly body: Buffer;
  /**
   * No one waits to hear that this message is on disk (published without confirms, outside
   * a transaction): a store may write its body without syncing it. It is synced with the
   * next write someone waits for that needs it, or by the kernel; an OS crash before then
   * may lose it (a broker crash does not). Absent: false.
   */
  readonly unconfirmed?: boolean;
}

/**
 * One message's place in one durable queue. Index keys sort in delivery order:
 * (queueId, 255 - priority, seq), binary and fixed-width.
 */
export interface EntryRecord {
  readonly queueId: number;
  /** 0–255; higher is delivered first */
  readonly priority: number;
  /** per-queue sequence, < 2^53 */
  readonly seq: number;
  readonly messageId: number;
  /** how many queue entries referenced the message when it was published (body freed when all are gone) */
  readonly refs: number;
  readonly redelivered: boolean;
  /**
   * A transient message paged out of memory (RabbitMQ pages transient messages of
   * durable queues too). Never survives a restart: recover() deletes such entries
   * (and their messages) and does not count them. Stored as flags bit 1.
   */
  readonly transient: boolean;
  /** when the message expires in this queue (ms since the epoch; 0 = never): TTL survives restarts */
  readonly expiresAt: number;
}

export interface StoredEntry extends EntryRecord {
  readonly message: MessageRecord;
}

/** One priority level of a queue's entries at recovery. */
export interface PriorityLevelSummary {
  readonly priority: number;
  readonly count: number;
  readonly bytes: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** Per-queue summary computed at recovery from the index (no bodies read). */
export interface QueueIndexSummary {
  readonly queueId: number;
  readonly count: number;
  readonly bytes: number;
  /** highest seq among the queue's entries (new entries must continue above it) */
  readonly lastSeq: number;
  /** the entries per priority level, in delivery order (highest priority first) */
  readonly levels: readonly PriorityLevelSummary[];
}

/** What recovery needs beyond topology. Message and queue ids are the store's own (allocated after recover()). */
export interface RecoveryInfo {
  readonly queues: readonly QueueIndexSummary[];
}

/** A transient message paged out of memory, as the spill keeps it. */
export interface SpillEntry {
  readonly seq: number;
  readonly redelivered: boolean;
  /** ms since the epoch; 0 = never */
  readonly expiresAt: number;
  readonly message: MessageRecord;
}

/** A chunk written to the spill (opaque to the model). */
export interface SpillChunk {
  readonly count: number;
  /** encoded size */
  readonly size: number;
}

/**
 * One queue lane's chunks in the spill. Chunks are written in order and mostly freed in
 * that order, so what one stream holds on disk goes as it is read back, whatever other
 * queues keep.
 */
export interface SpillStream {
  /** Writes one chunk of entries (one store operation, never fsynced); readable at once. */
  write(entries: readonly SpillEntry[]): SpillChunk;
  /** a chunk that cannot be read back (damaged) is quarantined and reads as empty */
  read(chunk: SpillChunk): Promise<SpillEntry[]>;
  /** the chunk was read back for good, or dropped */
  free(chunk: SpillChunk): void;
  /** the queue was deleted or purged: every chunk goes */
  close(): void;
}

/**
 * Where transient messages go when memory is short: separate from the durable log (no
 * fsync, never in a durable commit) and never surviving a restart. A write failure leaves
 * the chunk in memory (still readable) and makes the spill unwritable for a while.
 */
export interface Spill {
  /** `label` names whose messages the stream holds, for logs (e.g. "queue 'q' in vhost '/'") */
  openStream(label?: string): SpillStream;
  /** false for a while after a write failed: callers keep transient messages in memory */
  readonly writable: boolean;
  /** bytes handed to write() and not yet written */
  readonly backlogBytes: number;
  /** transient messages of chunks that could not be read back (kept in quarantine/), since the spill opened */
  readonly quarantinedMessages: number;
}

/** Told when the batch that was open when it registered is durable (or failed). */
export interface CommitListener {
  batchCommitted(error: Error | null): void;
}

/**
 * The broker's storage seam. The model calls the put/delete methods synchronously;
 * they go into the store's open batch, which is written as one atomic write with
 * sync (group commit) shortly after its first operation. A put and a delete of the
 * same key within one open batch cancel out before reaching the disk.
 * Backends: memory (tests, in-memory brokers) and level (durable default).
 */
export interface Store {
  /** the paging spill for transient messages (see Spill) */
  readonly spill: Spill;
  /** what has been handed to the store and not yet written (flow control) */
  readonly writeBehind: WriteBehind;
  open(): Promise<void>;
  close(): Promise<void>;
  loadTopology(): Promise<Topology>;
  putVhost(name: string): void;
  /** the vhost record only: its exchanges, queues and bindings are deleted one by one by the caller */
  deleteVhost(name: string): void;
  putExchange(record: ExchangeRecord): void;
  deleteExchange(vhost: string, name: string): void;
  /** A store-wide queue id for index keys, never handed out twice (valid once recover() has run on existing data). */
  allocateQueueId(): number;
  putQueue(record: QueueRecord): void;
  /**
   * Deletes the queue record and every index entry of the queue, releasing each entry's
   * reference to its message as deleteEntry does (a body goes with its last reference).
   * The model forgets the queue's entries at once: later acks of its deliveries are not
   * passed on.
   */
  deleteQueue(vhost: string, name: string, queueId: number): void;
  /**
   * queue.purge of a durable queue: it continues under a new id (`record.id`, its record
   * rewritten in the same batch) and every entry still under `oldQueueId` goes as with
   * deleteQueue. Deliveries awaiting their ack move to the new id first (moveEntry).
   */
  purgeQueue(record: QueueRecord, oldQueueId: number): void;
  /**
   * Moves an entry from `fromQueueId` to `entry.queueId` (same priority and seq); its
   * message stays referenced. Returns the refs the moved entry now has: pass that to
   * deleteEntry.
   */
  moveEntry(fromQueueId: number, entry: EntryRecord): number;
  /**
   * Queues whose entries are still being deleted. A deleted queue's entries go in the
   * background, in small chunks written beside the group commit, so that no commit of
   * other queues waits for a big delete; reads already see none of them.
   */
  readonly pendingDeletions: number;
  /** stored messages that failed their check when read (moved to quarantine/), since the store opened */
  readonly quarantinedMessages: number;
  /** resolves once no queue's entries are being deleted */
  deletionsDone(): Promise<void>;
  putBinding(record: BindingRecord): void;
  deleteBinding(record: BindingRecord): void;

  /**
   * Small records beside the topology, in the same batches: users, permissions, vhost
   * metadata and limits. Keys and values are opaque here; access-records.ts defines them.
   * Keys start with a kind byte in [RECORD_PREFIX_MIN, RECORD_PREFIX_MAX].
   */
  putRecord(key: Buffer, value: Buffer): void;
  deleteRecord(key: Buffer): void;
  /** every record of one kind (its first key byte), in key order */
  loadRecords(prefix: number): Promise<Array<[Buffer, Buffer]>>;

  /**
   * Writes a message's content once, however many queues will reference it, and returns
   * its store-wide id (never reused). Entries then reference it by id; the body is deleted
   * by the store when the last entry referencing it is deleted.
   */
  putMessage(record: MessageRecord): number;
  /** A new entry: it takes a reference to its message (counted when `refs` > 1). */
  putEntry(entry: EntryRecord): void;
  /** Rewrites an existing entry in place (its flags); its reference is unchanged. */
  updateEntry(entry: EntryRecord): void;
  /**
   * Deletes an entry and releases its reference to `messageId` (`refs`: the entry's refs);
   * the body goes with the last reference. Returns true when the entry never reached the
   * disk (its put, and its message's, were still in the open batch and cancel out): the
   * caller may treat it as settled at once.
   */
  deleteEntry(queueId: number, priority: number, seq: number, messageId: number, refs: number): boolean;
  /**
   * Entries of one queue in delivery order, strictly after `after` (null = from the start)
   * and up to `until` included (default: the end), with their messages. Reads what is
   * written: operations of batches not yet committed may or may not be seen (wait for them
   * with isCommitted/afterCommit first).
   */
  readEntries(
    queueId: number,
    after: { priority: number; seq: number } | null,
    limit: number,
    until?: { priority: number; seq: number },
  ): Promise<StoredEntry[]>;
  /** scans the index once at startup */
  recover(): Promise<RecoveryInfo>;

  /** register for the currently open batch (no-op immediate callback when nothing is pending) */
  afterCommit(listener: CommitListener): void;
  /**
   * Id of the currently open batch; it changes when that batch is closed for writing.
   * Lets a caller keep one listener object per batch (e.g. one per channel per batch)
   * instead of one per operation.
   */
  readonly openBatchId: number;
  /** whether every operation queued while batch `batchId` was open is durable */
  isCommitted(batchId: number): boolean;
  /** resolves when everything queued so far is durable */
  flush(): Promise<void>;
  /** bytes accepted and not yet written, for the disk alarm (stores on disk only) */
  readonly writeMeter?: WriteMeter;
}
