import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import { recordSeq, recordTerm } from './record.js';

type Db = Level<Buffer, Buffer>;

const RECORD_PREFIX = 0x30;
const META_APPLIED = Buffer.from('\x00applied', 'latin1');
const META_BASE = Buffer.from('\x00base', 'latin1');
const META_SYNCING = Buffer.from('\x00syncing', 'latin1');
/** records kept in memory for sending to followers without a read */
const CACHE_MAX_BYTES = 64 * 1024 * 1024;

function recordKey(seq: number): Buffer {
  const k = Buffer.allocUnsafe(9);
  k[0] = RECORD_PREFIX;
  k.writeBigUInt64BE(BigInt(seq), 1);
  return k;
}

function position(seq: number, term: number): Buffer {
  const b = Buffer.allocUnsafe(16);
  b.writeBigUInt64BE(BigInt(seq), 0);
  b.writeBigUInt64BE(BigInt(term), 8);
  return b;
}

function readPosition(b: Buffer | undefined): { seq: number; term: number } {
  if (b === undefined || b.length !== 16) return { seq: 0, term: 0 };
  return { seq: Number(b.readBigUInt64BE(0)), term: Number(b.readBigUInt64BE(8)) };
}

export interface Position {
  readonly seq: number;
  readonly term: number;
}

/**
 * The replicated op log of one node: records by seq in a LevelDB of its own (beside the
 * store, in `<data dir>/cluster/log`), plus where the store stands (`applied`) and the
 * position the log starts after (`base`: 0, or a snapshot's position).
 *
 * Records are appended in seq order; a divergent tail is cut (never below `applied`:
 * applied records are committed). `applied` may lag the store by a few records after a
 * crash: records are blind puts and deletes, so applying one again changes nothing.
 */
export class OpLog {
  private db: Db | null = null;
  private base: Position = { seq: 0, term: 0 };
  private last: Position = { seq: 0, term: 0 };
  private applied_: Position = { seq: 0, term: 0 };
  private syncing_ = false;
  private readonly cache = new Map<number, Buffer>();
  private cacheBytes = 0;

  constructor(readonly dir: string) {}

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const db: Db = new Level<Buffer, Buffer>(this.dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    this.db = db;
    this.base = readPosition(await db.get(META_BASE));
    this.applied_ = readPosition(await db.get(META_APPLIED));
    this.syncing_ = (await db.get(META_SYNCING)) !== undefined;
    const lastKeys = await db.iterator({ gte: recordKey(0), lte: recordKey(Number.MAX_SAFE_INTEGER), reverse: true, limit: 1 }).all();
    const lastRow = lastKeys[0];
    this.last = lastRow === undefined ? this.base : { seq: recordSeq(lastRow[1]), term: recordTerm(lastRow[1]) };
    if (this.applied_.seq < this.base.seq) this.applied_ = this.base;
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = null;
    this.cache.clear();
    this.cacheBytes = 0;
    if (db !== null) await db.close();
  }

  private requireDb(): Db {
    if (this.db === null) throw new Error('op log is not open');
    return this.db;
  }

  get lastPosition(): Position {
    return this.last;
  }

  get basePosition(): Position {
    return this.base;
  }

  get applied(): Position {
    return this.applied_;
  }

  /** a snapshot is being installed: the store is incomplete and must not be promoted or opened */
  get syncing(): boolean {
    return this.syncing_;
  }

  /** appends records (encoded, consecutive, continuing the log) in one write */
  async append(records: readonly Buffer[], sync: boolean): Promise<void> {
    if (records.length === 0) return;
    const db = this.requireDb();
    const batch = db.batch();
    let expect = this.last.seq + 1;
    for (const r of records) {
      const seq = recordSeq(r);
      if (seq !== expect) {
        await batch.close();
        throw new Error(`op log: append of seq ${seq} after ${expect - 1}`);
      }
      expect++;
      batch.put(recordKey(seq), r);
    }
    const lastRecord = records[records.length - 1]!;
    this.last = { seq: recordSeq(lastRecord), term: recordTerm(lastRecord) };
    for (const r of records) this.remember(r);
    await batch.write({ sync });
  }

  private remember(r: Buffer): void {
    this.cache.set(recordSeq(r), r);
    this.cacheBytes += r.length;
    while (this.cacheBytes > CACHE_MAX_BYTES && this.cache.size > 1) {
      const [seq, oldest] = this.cache.entries().next().value as [number, Buffer];
      this.cache.delete(seq);
      this.cacheBytes -= oldest.length;
    }
  }

  /** the record at seq, or undefined when it is not (or no longer) in the log */
  async get(seq: number): Promise<Buffer | undefined> {
    if (seq <= this.base.seq || seq > this.last.seq) return undefined;
    const cached = this.cache.get(seq);
    if (cached !== undefined) return cached;
    return this.requireDb().get(recordKey(seq));
  }

  /** term of the record at seq (the base's term at the base), or undefined when unknown */
  async termAt(seq: number): Promise<number | undefined> {
    if (seq === this.base.seq) return this.base.term;
    const r = await this.get(seq);
    return r === undefined ? undefined : recordTerm(r);
  }

  /** removes every record after `seq` (a divergent tail); never below what the store applied */
  async truncateAfter(seq: number): Promise<void> {
    if (seq < this.applied_.seq) throw new Error(`op log: refusing to cut below the applied seq ${this.applied_.seq}`);
    if (seq >= this.last.seq) return;
    const db = this.requireDb();
    await db.clear({ gt: recordKey(seq), lte: recordKey(Number.MAX_SAFE_INTEGER) });
    for (const s of [...this.cache.keys()]) {
      if (s > seq) {
        this.cacheBytes -= this.cache.get(s)!.length;
        this.cache.delete(s);
      }
    }
    const term = await this.termAt(seq);
    this.last = { seq, term: term ?? this.base.term };
  }

  /** records that the store holds everything up to `p` (not synced: see the class comment) */
  async setApplied(p: Position): Promise<void> {
    this.applied_ = p;
    await this.requireDb().put(META_APPLIED, position(p.seq, p.term));
  }

  /** drops records at or below `seq` that every follower has (retention) */
  async prune(seq: number): Promise<void> {
    const upTo = Math.min(seq, this.applied_.seq);
    if (upTo <= this.base.seq) return;
    const term = (await this.termAt(upTo)) ?? this.base.term;
    const db = this.requireDb();
    await db.batch([{ type: 'put', key: META_BASE, value: position(upTo, term) }]);
    await db.clear({ gt: recordKey(this.base.seq), lte: recordKey(upTo) });
    for (const s of [...this.cache.keys()]) {
      if (s <= upTo) {
        this.cacheBytes -= this.cache.get(s)!.length;
        this.cache.delete(s);
      }
    }
    this.base = { seq: upTo, term };
  }

  async beginSnapshot(): Promise<void> {
    this.syncing_ = true;
    await this.requireDb().put(META_SYNCING, Buffer.alloc(0), { sync: true });
  }

  /** after a snapshot of state `p` was installed in the store: the log restarts after it */
  async finishSnapshot(p: Position): Promise<void> {
    const db = this.requireDb();
    await db.clear({ gte: recordKey(0), lte: recordKey(Number.MAX_SAFE_INTEGER) });
    await db.batch(
      [
        { type: 'put', key: META_BASE, value: position(p.seq, p.term) },
        { type: 'put', key: META_APPLIED, value: position(p.seq, p.term) },
        { type: 'del', key: META_SYNCING },
      ],
      { sync: true },
    );
    this.cache.clear();
    this.cacheBytes = 0;
    this.base = p;
    this.last = p;
    this.applied_ = p;
    this.syncing_ = false;
  }
}
