import { bindingArgsKey } from '../protocol/binding-args-key.js';
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
import { MessageRefs } from './message-refs.js';
import { MemorySpill } from './memory-spill.js';
import { WriteBehind } from './write-behind.js';

const bindingKey = (b: BindingRecord): string =>
  JSON.stringify([b.vhost, b.source, b.destinationKind, b.destination, b.routingKey, bindingArgsKey(b.arguments)]);

const COMPACT_AT = 1024;

/**
 * The entries of one (queue, priority) sorted by seq. Entries arrive mostly in seq order
 * and leave mostly from the front, so removal at the head only moves `head` (no O(n) shift).
 */
class SeqList {
  seqs: number[] = [];
  entries: (EntryRecord | undefined)[] = [];
  head = 0;

  get size(): number {
    return this.seqs.length - this.head;
  }

  /** index of the first seq >= `seq` */
  lowerBound(seq: number): number {
    let lo = this.head;
    let hi = this.seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqs[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  put(entry: EntryRecord): void {
    const n = this.seqs.length;
    if (n === this.head || this.seqs[n - 1]! < entry.seq) {
      this.seqs.push(entry.seq);
      this.entries.push(entry);
      return;
    }
    const i = this.lowerBound(entry.seq);
    if (this.seqs[i] === entry.seq) this.entries[i] = entry;
    else {
      this.seqs.splice(i, 0, entry.seq);
      this.entries.splice(i, 0, entry);
    }
  }

  delete(seq: number): void {
    const i = this.lowerBound(seq);
    if (i >= this.seqs.length || this.seqs[i] !== seq) return;
    if (i === this.head) {
      this.entries[i] = undefined;
      this.head++;
      if (this.head >= COMPACT_AT && this.head * 2 >= this.seqs.length) {
        this.seqs = this.seqs.slice(this.head);
        this.entries = this.entries.slice(this.head);
        this.head = 0;
      }
    } else {
      this.seqs.splice(i, 1);
      this.entries.splice(i, 1);
    }
  }
}

/** One queue's entries: a SeqList per priority, read highest priority first. */
class QueueEntries {
  readonly byPriority = new Map<number, SeqList>();

  put(entry: EntryRecord): void {
    let list = this.byPriority.get(entry.priority);
    if (list === undefined) {
      list = new SeqList();
      this.byPriority.set(entry.priority, list);
    }
    list.put(entry);
  }

  delete(priority: number, seq: number): void {
    const list = this.byPriority.get(priority);
    if (list === undefined) return;
    list.delete(seq);
    if (list.size === 0) this.byPriority.delete(priority);
  }

  /** priorities present, highest first (delivery order) */
  priorities(): number[] {
    return [...this.byPriority.keys()].sort((a, b) => b - a);
  }
}

function notifyAll(store: MemoryStore): void {
  store.commitOpenBatch();
}

/**
 * Keeps everything in memory for the life of the process: the store for in-memory
 * brokers (startBroker in tests) and the reference for the store contract. Nothing is
 * written anywhere, so a "batch" is one tick: afterCommit listeners registered during
 * a tick are called once on the next one. close() keeps the data: open() again on the
 * same instance sees it, like a restart of a durable store.
 */
export class MemoryStore implements Store {
  readonly spill = new MemorySpill();
  /** nothing waits to be written: never saturated */
  readonly writeBehind = new WriteBehind();
  private readonly vhosts = new Set<string>();
  private readonly exchanges = new Map<string, ExchangeRecord>();
  private readonly queues = new Map<string, QueueRecord>();
  private readonly bindings = new Map<string, BindingRecord>();
  private readonly messages = new Map<number, MessageRecord>();
  /** access records: latin1 key (byte order = string order) → value */
  private readonly records = new Map<string, Buffer>();
  private readonly entries = new Map<number, QueueEntries>();
  private listeners = new Set<CommitListener>();
  /** message and queue ids, shared-body reference counts */
  private readonly refs = new MessageRefs();
  private batchId = 1;
  private tickScheduled = false;

  async open(): Promise<void> {}
  async close(): Promise<void> {
    await this.flush();
  }

  async loadTopology(): Promise<Topology> {
    return {
      vhosts: [...this.vhosts],
      exchanges: [...this.exchanges.values()],
      queues: [...this.queues.values()],
      bindings: [...this.bindings.values()],
    };
  }

  putVhost(name: string): void {
    this.vhosts.add(name);
  }
  deleteVhost(name: string): void {
    this.vhosts.delete(name);
  }
  putRecord(key: Buffer, value: Buffer): void {
    this.records.set(key.toString('latin1'), Buffer.from(value));
  }
  deleteRecord(key: Buffer): void {
    this.records.delete(key.toString('latin1'));
  }
  async loadRecords(prefix: number): Promise<Array<[Buffer, Buffer]>> {
    const out: Array<[Buffer, Buffer]> = [];
    for (const k of [...this.records.keys()].sort()) {
      if (k.charCodeAt(0) === prefix) out.push([Buffer.from(k, 'latin1'), this.records.get(k)!]);
    }
    return out;
  }
  putExchange(record: ExchangeRecord): void {
    this.exchanges.set(`${record.vhost}\0${record.name}`, record);
  }
  deleteExchange(vhost: string, name: string): void {
    this.exchanges.delete(`${vhost}\0${name}`);
  }
  putQueue(record: QueueRecord): void {
    this.queues.set(`${record.vhost}\0${record.name}`, record);
  }
  allocateQueueId(): number {
    return this.refs.allocateQueueId();
  }
  deleteQueue(vhost: string, name: string, queueId: number): void {
    this.queues.delete(`${vhost}\0${name}`);
    const q = this.entries.get(queueId);
    this.entries.delete(queueId);
    if (q !== undefined) this.releaseAll(q);
  }
  purgeQueue(record: QueueRecord, oldQueueId: number): void {
    this.putQueue(record);
    const q = this.entries.get(oldQueueId);
    this.entries.delete(oldQueueId);
    if (q !== undefined) this.releaseAll(q);
  }
  moveEntry(fromQueueId: number, e: EntryRecord): number {
    // the old entry is released below (as the purge's deletion would): keep the message referenced
    const refs = Math.max(e.refs, 2);
    this.refs.take(e.messageId, refs);
    if (e.refs <= 1) {
      this.refs.take(e.messageId, refs);
      this.writeEntry({ ...e, queueId: fromQueueId, refs });
    }
    this.writeEntry({ ...e, refs });
    return refs;
  }
  /** nothing is read back from a medium that can be damaged */
  readonly quarantinedMessages = 0;

  get pendingDeletions(): number {
    return 0;
  }
  deletionsDone(): Promise<void> {
    return Promise.resolve();
  }
  /** every entry of a deleted queue lets go of its message */
  private releaseAll(q: QueueEntries): void {
    for (const list of q.byPriority.values()) {
      for (let i = list.head; i < list.seqs.length; i++) {
        const e = list.entries[i]!;
        if (e.transient || this.refs.release(e.messageId, e.refs)) this.messages.delete(e.messageId);
      }
    }
  }
  putBinding(record: BindingRecord): void {
    this.bindings.set(bindingKey(record), record);
  }
  deleteBinding(record: BindingRecord): void {
    this.bindings.delete(bindingKey(record));
  }

  putMessage(record: MessageRecord): number {
    const messageId = this.refs.allocateMessageId();
    // a snapshot: callers may pass a live object (the model's Message)
    this.messages.set(messageId, { exchange: record.exchange, routingKey: record.routingKey, rawProperties: record.rawProperties, body: record.body });
    return messageId;
  }
  putEntry(e: EntryRecord): void {
    this.refs.take(e.messageId, e.refs);
    this.writeEntry(e);
  }
  updateEntry(e: EntryRecord): void {
    this.writeEntry(e);
  }
  private writeEntry(e: EntryRecord): void {
    let q = this.entries.get(e.queueId);
    if (q === undefined) {
      q = new QueueEntries();
      this.entries.set(e.queueId, q);
    }
    // a snapshot: the model's entry objects change (redelivered) after they are written
    q.put({ queueId: e.queueId, priority: e.priority, seq: e.seq, messageId: e.messageId, refs: e.refs, redelivered: e.redelivered, transient: e.transient, expiresAt: e.expiresAt });
  }
  deleteEntry(queueId: number, priority: number, seq: number, messageId: number, refs: number): boolean {
    const q = this.entries.get(queueId);
    if (q !== undefined) {
      q.delete(priority, seq);
      if (q.byPriority.size === 0) this.entries.delete(queueId);
    }
    if (this.refs.release(messageId, refs)) this.messages.delete(messageId);
    return false; // nothing here is "on disk" or not: confirms just follow afterCommit
  }

  async readEntries(
    queueId: number,
    after: { priority: number; seq: number } | null,
    limit: number,
    until?: { priority: number; seq: number },
  ): Promise<StoredEntry[]> {
    const out: StoredEntry[] = [];
    const q = this.entries.get(queueId);
    if (q === undefined || limit <= 0) return out;
    for (const priority of q.priorities()) {
      if (after !== null && priority > after.priority) continue;
      if (until !== undefined && priority < until.priority) break;
      const list = q.byPriority.get(priority)!;
      let i = after !== null && priority === after.priority ? list.lowerBound(after.seq + 1) : list.head;
      for (; i < list.seqs.length && out.length < limit; i++) {
        const e = list.entries[i]!;
        if (until !== undefined && priority === until.priority && e.seq > until.seq) break;
        const message = this.messages.get(e.messageId);
        if (message !== undefined) out.push({ ...e, message });
      }
      if (out.length >= limit) break;
    }
    return out;
  }

  async recover(): Promise<RecoveryInfo> {
    let maxQueueId = 0;
    type Level = { priority: number; count: number; bytes: number; firstSeq: number; lastSeq: number };
    const summaries = new Map<number, { queueId: number; count: number; bytes: number; lastSeq: number; levels: Level[] }>();
    for (const r of this.queues.values()) {
      summaries.set(r.id, { queueId: r.id, count: 0, bytes: 0, lastSeq: 0, levels: [] });
      if (r.id > maxQueueId) maxQueueId = r.id;
    }
    let maxMessageId = 0;
    for (const id of this.messages.keys()) if (id > maxMessageId) maxMessageId = id;
    const refs = this.refs;
    refs.resetShared();
    const orphans: QueueEntries[] = [];
    const transient: EntryRecord[] = [];
    for (const [queueId, q] of [...this.entries]) {
      if (queueId > maxQueueId) maxQueueId = queueId;
      const summary = summaries.get(queueId);
      for (const priority of q.priorities()) {
        const list = q.byPriority.get(priority)!;
        let level: Level | undefined;
        for (let i = list.head; i < list.seqs.length; i++) {
          const e = list.entries[i]!;
          if (e.messageId > maxMessageId) maxMessageId = e.messageId;
          // paged-out transient messages never survive a restart
          if (e.transient) {
            if (summary !== undefined) transient.push(e);
            continue;
          }
          refs.take(e.messageId, e.refs);
          if (summary === undefined) continue;
          if (e.seq > summary.lastSeq) summary.lastSeq = e.seq;
          summary.count++;
          const size = this.messages.get(e.messageId)?.body.length ?? 0;
          summary.bytes += size;
          if (level === undefined) {
            level = { priority, count: 0, bytes: 0, firstSeq: e.seq, lastSeq: e.seq };
            summary.levels.push(level);
          }
          level.count++;
          level.bytes += size;
          level.lastSeq = e.seq;
        }
      }
      if (summary === undefined) {
        // left by an interrupted queue delete: finish it
        this.entries.delete(queueId);
        orphans.push(q);
      }
    }
    refs.seen(maxMessageId, maxQueueId);
    for (const q of orphans) this.releaseAll(q);
    for (const e of transient) this.deleteEntry(e.queueId, e.priority, e.seq, e.messageId, 1);
    const queues: QueueIndexSummary[] = [...summaries.values()].sort((a, b) => a.queueId - b.queueId);
    return { queues };
  }

  get openBatchId(): number {
    return this.batchId;
  }

  isCommitted(batchId: number): boolean {
    return batchId < this.batchId;
  }

  afterCommit(listener: CommitListener): void {
    this.listeners.add(listener);
    if (!this.tickScheduled) {
      this.tickScheduled = true;
      process.nextTick(notifyAll, this);
    }
  }

  /** @internal the tick's batch is "durable": call its listeners once */
  commitOpenBatch(): void {
    const listeners = this.listeners;
    this.listeners = new Set();
    this.tickScheduled = false;
    this.batchId++;
    for (const l of listeners) l.batchCommitted(null);
  }

  flush(): Promise<void> {
    return new Promise<void>((resolve) => this.afterCommit({ batchCommitted: () => resolve() }));
  }
}
