import type { FieldTable } from '../protocol/field-types.js';
import type { WriteMeter } from './write-meter.js';

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

/** Per-queue summary computed at recovery from the index (no bodies read). */
export interface QueueIndexSummary {
  readonly queueId: number;
  readonly count: number;
  readonly bytes: number;
  /** highest seq among the queue's entries (new entries must continue above it) */
  readonly lastSeq: number;
}

/** What recovery needs beyond topology. */
export interface RecoveryInfo {
  readonly queues: readonly QueueIndexSummary[];
  /** next free message id (larger than any stored) */
  readonly nextMessageId: number;
  /** next free queue id (larger than any stored) */
  readonly nextQueueId: number;
  /** remaining reference counts of messages still referenced by more than one entry */
  readonly sharedRefs: ReadonlyMap<number, number>;
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
  open(): Promise<void>;
  close(): Promise<void>;
  loadTopology(): Promise<Topology>;
  putVhost(name: string): void;
  /** the vhost record only: its exchanges, queues and bindings are deleted one by one by the caller */
  deleteVhost(name: string): void;
  putExchange(record: ExchangeRecord): void;
  deleteExchange(vhost: string, name: string): void;
  putQueue(record: QueueRecord): void;
  /**
   * Deletes the queue record and every index entry of the queue. Bodies held only by
   * the queue are the caller's to free. A shared body (entry refs > 1) is the caller's
   * to release too, but after the delete only the store knows which entries are left
   * (paged-out ones never were in memory): `releaseShared` is called once for each
   * remaining shared entry whose deleteEntry was not called, possibly after this returns.
   */
  deleteQueue(vhost: string, name: string, queueId: number, releaseShared?: (messageId: number) => void): void;
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

  putMessage(messageId: number, record: MessageRecord): void;
  deleteMessage(messageId: number): void;
  putEntry(entry: EntryRecord): void;
  /**
   * Returns true when the entry never reached the disk (its put, and its message's, were
   * still in the open batch and cancel out): the caller may treat it as settled at once.
   */
  deleteEntry(queueId: number, priority: number, seq: number): boolean;
  /** entries of one queue in delivery order, strictly after `after` (null = from the start), with their messages */
  readEntries(queueId: number, after: { priority: number; seq: number } | null, limit: number): Promise<StoredEntry[]>;
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
  /** resolves when everything queued so far is durable */
  flush(): Promise<void>;
  /** bytes accepted and not yet written, for the disk alarm (stores on disk only) */
  readonly writeMeter?: WriteMeter;
}
