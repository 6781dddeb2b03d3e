import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { recordSeq, recordTerm } from './record.js';

/** records kept in memory for sending to followers and applying without a read */
const CACHE_MAX_BYTES = 64 * 1024 * 1024;
/** a new segment file is started once the current one holds this much */
const SEGMENT_BYTES = 64 * 1024 * 1024;
/** entry := length u32 | crc32(record) u32 | record */
const ENTRY_HEADER = 8;
/** records longer than this are refused as corrupt when reading (a record holds one store batch) */
const RECORD_MAX = 1024 * 1024 * 1024;
const SEGMENT_SUFFIX = '.seg';
const META_FILE = 'meta';
/** meta slot := magic u32 | counter u32 | base seq u64 | base term u64 | applied seq u64 | applied term u64 | committed u64 | syncing u8 | crc32 u32 */
const META_SLOT = 57;
const META_MAGIC = 0x57524c31; // "WRL1"
/** how long a position noted with noteApplied may wait for its meta write */
export const META_DEFER_MS = 100;

export interface Position {
  readonly seq: number;
  readonly term: number;
}

interface Segment {
  /** seq of the first record written in this file */
  readonly firstSeq: number;
  readonly path: string;
  handle: FileHandle | null;
  /** byte offset of each record's entry, by seq - firstSeq */
  readonly offsets: number[];
  readonly lengths: number[];
  size: number;
}

function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

function encodeMeta(counter: number, base: Position, applied: Position, committed: number, syncing: boolean): Buffer {
  const b = Buffer.alloc(META_SLOT);
  b.writeUInt32BE(META_MAGIC, 0);
  b.writeUInt32BE(counter >>> 0, 4);
  b.writeBigUInt64BE(BigInt(base.seq), 8);
  b.writeBigUInt64BE(BigInt(base.term), 16);
  b.writeBigUInt64BE(BigInt(applied.seq), 24);
  b.writeBigUInt64BE(BigInt(applied.term), 32);
  b.writeBigUInt64BE(BigInt(committed), 40);
  b[48] = syncing ? 1 : 0;
  b.writeUInt32BE(crc32(b.subarray(0, 49)), 49);
  return b;
}

function decodeMeta(b: Buffer): { counter: number; base: Position; applied: Position; committed: number; syncing: boolean } | null {
  if (b.length < META_SLOT || b.readUInt32BE(0) !== META_MAGIC || b.readUInt32BE(49) !== crc32(b.subarray(0, 49))) return null;
  return {
    counter: b.readUInt32BE(4),
    base: { seq: Number(b.readBigUInt64BE(8)), term: Number(b.readBigUInt64BE(16)) },
    applied: { seq: Number(b.readBigUInt64BE(24)), term: Number(b.readBigUInt64BE(32)) },
    committed: Number(b.readBigUInt64BE(40)),
    syncing: b[48] === 1,
  };
}

/**
 * The replicated op log of one node (in `<data dir>/cluster/log`): records by seq in
 * append-only segment files, plus where the store stands (`applied`) and the position the
 * log starts after (`base`: 0, or a snapshot's position, or the pruning point).
 *
 * An append is one sequential write of its records (length, CRC-32, record each) to the
 * current segment, fsynced (fdatasync) when asked: a follower's ack, and a leader alone,
 * promise that much. On open, the segments are read back and a torn or corrupt tail (a
 * write that a crash cut short: never acked) is cut off. Pruning drops whole segments once
 * everything in them is at or below the base; a divergent tail is cut by truncating files.
 *
 * `meta` holds base, applied and the snapshot mark in two checksummed slots written in
 * turn (a torn write leaves the other one valid). `applied` is written after the store has
 * the records, not synced: it may lag the store by a few records after a crash, and
 * records are blind puts and deletes, so applying one again changes nothing.
 *
 * Mutations run one at a time, in call order; the positions they change are updated at
 * once, so a record appended is readable (from memory) before its write completes.
 */
export class OpLog {
  private segments: Segment[] = [];
  private base: Position = { seq: 0, term: 0 };
  private last: Position = { seq: 0, term: 0 };
  private applied_: Position = { seq: 0, term: 0 };
  private committed_ = 0;
  private syncing_ = false;
  private metaHandle: FileHandle | null = null;
  private metaCounter = 0;
  /** an unsynced meta write queued and not started yet (noteMeta) */
  private metaQueued: Promise<void> | null = null;
  /** a meta write noteApplied deferred (at most one: later positions ride it) */
  private metaTimer: NodeJS.Timeout | null = null;
  private readonly cache = new Map<number, Buffer>();
  private cacheBytes = 0;
  /** serializes every write to the files */
  private chain: Promise<void> = Promise.resolve();
  /** highest seq whose write to its segment has completed */
  private writtenSeq = 0;
  private opened = false;
  private broken: Error | null = null;

  private readonly segmentBytes: number;

  constructor(
    readonly dir: string,
    options: { segmentBytes?: number } = {},
  ) {
    this.segmentBytes = options.segmentBytes ?? SEGMENT_BYTES;
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const names = await readdir(this.dir);
    if (names.includes('CURRENT') && !names.includes(META_FILE)) await this.importLevelLog(names);
    this.metaHandle = await open(join(this.dir, META_FILE), 'a+');
    const metaBuf = Buffer.alloc(META_SLOT * 2);
    const { bytesRead } = await this.metaHandle.read(metaBuf, 0, metaBuf.length, 0);
    await this.metaHandle.close();
    this.metaHandle = await open(join(this.dir, META_FILE), 'r+');
    const slots = [decodeMeta(metaBuf.subarray(0, Math.min(bytesRead, META_SLOT))), bytesRead >= 2 * META_SLOT ? decodeMeta(metaBuf.subarray(META_SLOT)) : null];
    const meta = slots.filter((m) => m !== null).sort((a, b) => b.counter - a.counter)[0];
    if (meta !== undefined) {
      this.metaCounter = meta.counter;
      this.base = meta.base;
      this.applied_ = meta.applied;
      this.committed_ = meta.committed;
      this.syncing_ = meta.syncing;
    }
    if (this.applied_.seq < this.base.seq) this.applied_ = this.base;
    this.last = this.base;
    const segNames = (await readdir(this.dir)).filter((n) => n.endsWith(SEGMENT_SUFFIX)).sort();
    for (let i = 0; i < segNames.length; i++) {
      const name = segNames[i]!;
      const firstSeq = Number(name.slice(0, -SEGMENT_SUFFIX.length));
      const path = join(this.dir, name);
      const next = segNames[i + 1];
      // a segment entirely at or below the base (pruning was interrupted): drop it
      if (next !== undefined && Number(next.slice(0, -SEGMENT_SUFFIX.length)) - 1 <= this.base.seq) {
        await rm(path, { force: true });
        continue;
      }
      const intact = await this.loadSegment(firstSeq, path);
      if (!intact) {
        // a torn tail: everything after it goes (it was never acknowledged)
        for (const later of segNames.slice(i + 1)) await rm(join(this.dir, later), { force: true });
        break;
      }
    }
    this.writtenSeq = this.last.seq;
    this.committed_ = Math.max(this.applied_.seq, Math.min(this.committed_, this.last.seq));
    if (this.last.seq < this.applied_.seq) throw new Error(`op log ${this.dir}: records end at ${this.last.seq}, below the applied seq ${this.applied_.seq}`);
    this.opened = true;
  }

  /** reads one segment into the index; false when it ended in a torn or corrupt entry (cut off) */
  private async loadSegment(firstSeq: number, path: string): Promise<boolean> {
    const handle = await open(path, 'r+');
    const { size } = await handle.stat();
    const seg: Segment = { firstSeq, path, handle, offsets: [], lengths: [], size: 0 };
    const expected = this.last.seq + 1;
    if (firstSeq > expected && firstSeq > this.base.seq + 1) {
      await handle.close();
      throw new Error(`op log ${this.dir}: segment ${path} starts at ${firstSeq}, after a hole at ${expected}`);
    }
    const head = Buffer.allocUnsafe(ENTRY_HEADER);
    let at = 0;
    let intact = true;
    for (let seq = firstSeq; at < size; seq++) {
      if (at + ENTRY_HEADER > size) {
        intact = false;
        break;
      }
      await handle.read(head, 0, ENTRY_HEADER, at);
      const len = head.readUInt32BE(0);
      if (len < 20 || len > RECORD_MAX || at + ENTRY_HEADER + len > size) {
        intact = false;
        break;
      }
      const rec = Buffer.allocUnsafe(len);
      await handle.read(rec, 0, len, at + ENTRY_HEADER);
      if (crc32(rec) !== head.readUInt32BE(4) || recordSeq(rec) !== seq) {
        intact = false;
        break;
      }
      seg.offsets.push(at);
      seg.lengths.push(len);
      at += ENTRY_HEADER + len;
      if (seq > this.base.seq) this.last = { seq, term: recordTerm(rec) };
    }
    if (!intact) {
      await handle.truncate(at);
      await handle.datasync();
    }
    seg.size = at;
    this.segments.push(seg);
    return intact;
  }

  /** one-off upgrade: the op log used to be a LevelDB in this directory */
  private async importLevelLog(names: readonly string[]): Promise<void> {
    // a segment left by an import a crash interrupted (no meta yet): start again
    for (const n of names) if (n.endsWith(SEGMENT_SUFFIX)) await rm(join(this.dir, n), { force: true });
    const { Level } = await import('level');
    const db = new Level<Buffer, Buffer>(this.dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    const read = (b: Buffer | undefined): Position =>
      b === undefined || b.length !== 16 ? { seq: 0, term: 0 } : { seq: Number(b.readBigUInt64BE(0)), term: Number(b.readBigUInt64BE(8)) };
    try {
      const base = read(await db.get(Buffer.from('\x00base', 'latin1')));
      const applied = read(await db.get(Buffer.from('\x00applied', 'latin1')));
      const syncing = (await db.get(Buffer.from('\x00syncing', 'latin1'))) !== undefined;
      let handle: FileHandle | null = null;
      let at = 0;
      for await (const [, rec] of db.iterator({ gte: Buffer.from([0x30]), lt: Buffer.from([0x31]) })) {
        if (recordSeq(rec) <= base.seq) continue;
        if (handle === null) handle = await open(join(this.dir, segmentName(recordSeq(rec))), 'w');
        const head = Buffer.allocUnsafe(ENTRY_HEADER);
        head.writeUInt32BE(rec.length, 0);
        head.writeUInt32BE(crc32(rec), 4);
        await handle.writev([head, rec], at);
        at += ENTRY_HEADER + rec.length;
      }
      if (handle !== null) {
        await handle.datasync();
        await handle.close();
      }
      const meta = await open(join(this.dir, META_FILE), 'w');
      const from = applied.seq < base.seq ? base : applied;
      await meta.write(encodeMeta(1, base, from, from.seq, syncing), 0, META_SLOT, 0);
      await meta.datasync();
      await meta.close();
    } finally {
      await db.close();
    }
    // the names as they are now: closing the LevelDB may have written new files
    for (const n of await readdir(this.dir)) {
      if (n === 'CURRENT' || n === 'LOCK' || n.startsWith('LOG') || n.startsWith('MANIFEST-') || n.endsWith('.ldb') || /^\d{6}\.log$/.test(n)) await rm(join(this.dir, n), { force: true });
    }
    await this.syncDir();
  }

  async close(): Promise<void> {
    if (!this.opened) return;
    if (this.metaTimer !== null) {
      // the positions noted last reach meta before the files close
      clearTimeout(this.metaTimer);
      this.metaTimer = null;
      void this.noteMeta().catch(() => {});
    }
    await this.chain.catch(() => {});
    this.opened = false;
    this.broken = null;
    for (const s of this.segments) await s.handle?.close();
    this.segments = [];
    await this.metaHandle?.close();
    this.metaHandle = null;
    this.cache.clear();
    this.cacheBytes = 0;
  }

  private requireOpen(): void {
    if (this.broken !== null) throw new Error(`op log failed earlier (${this.broken.message}); the node must restart`, { cause: this.broken });
    if (!this.opened) throw new Error('op log is not open');
  }

  /**
   * runs a write after every earlier one. A failed write leaves the files behind the
   * positions already advanced: the log refuses everything after it (nothing more is acked
   * or confirmed from it) until it is opened again, which reads what the files hold.
   */
  private serial<T>(step: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      this.requireOpen();
      return step();
    });
    this.chain = run.then(
      () => {},
      (err: unknown) => {
        if (this.opened && this.broken === null) this.broken = err instanceof Error ? err : new Error(String(err));
      },
    );
    return run;
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

  /**
   * the highest seq this node learnt was committed and holds in its log (matching the
   * leader's): at start, a follower replays its log up to here into its store
   */
  get committed(): number {
    return this.committed_;
  }

  /** notes a commit point (not synced, as `applied`); never moves back */
  async setCommitted(seq: number): Promise<void> {
    if (seq <= this.committed_) return;
    this.committed_ = seq;
    await this.noteMeta();
  }

  /**
   * notes a commit point in memory only: it reaches `meta` with the next meta write (the
   * one a follower's next noteApplied defers, which follows at once). Losing it in a crash only means
   * fewer records replayed into the store at start: a leader commits them again.
   */
  noteCommitted(seq: number): void {
    if (seq > this.committed_) this.committed_ = seq;
  }

  /**
   * an unsynced meta write, shared with one already queued and not yet started (it writes
   * the positions as they are when it runs): one write per turn of the chain, not per call
   */
  private noteMeta(): Promise<void> {
    if (this.metaQueued !== null) return this.metaQueued;
    const queued = this.serial(() => {
      this.metaQueued = null;
      return this.writeMeta(false);
    });
    this.metaQueued = queued;
    // a write refused before it started (log closed or broken) is not shared any further
    const clear = (): void => {
      if (this.metaQueued === queued) this.metaQueued = null;
    };
    queued.then(clear, clear);
    return queued;
  }

  /** a snapshot is being installed: the store is incomplete and must not be promoted or opened */
  get syncing(): boolean {
    return this.syncing_;
  }

  /**
   * appends records (encoded, consecutive, continuing the log) in one write; fdatasync when
   * `sync`. Records are kept in memory for `get` unless `cacheable` says no (a buffer its
   * owner reuses once the append resolved).
   */
  append(records: readonly Buffer[], sync: boolean, cacheable?: (record: Buffer) => boolean): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    try {
      this.requireOpen();
      let expect = this.last.seq + 1;
      for (const r of records) {
        const seq = recordSeq(r);
        if (seq !== expect) throw new Error(`op log: append of seq ${seq} after ${expect - 1}`);
        expect++;
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const lastRecord = records[records.length - 1]!;
    this.last = { seq: recordSeq(lastRecord), term: recordTerm(lastRecord) };
    for (const r of records) if (cacheable === undefined || cacheable(r)) this.remember(r);
    return this.serial(async () => {
      const firstSeq = recordSeq(records[0]!);
      let seg = this.segments[this.segments.length - 1];
      if (seg === undefined || seg.size >= this.segmentBytes || seg.firstSeq + seg.offsets.length !== firstSeq) seg = await this.newSegment(firstSeq);
      const parts: Buffer[] = [];
      let at = seg.size;
      const offsets: number[] = [];
      for (const r of records) {
        const head = Buffer.allocUnsafe(ENTRY_HEADER);
        head.writeUInt32BE(r.length, 0);
        head.writeUInt32BE(crc32(r), 4);
        parts.push(head, r);
        offsets.push(at);
        at += ENTRY_HEADER + r.length;
      }
      await writeAll(seg.handle!, parts, seg.size);
      if (sync) await seg.handle!.datasync();
      for (let i = 0; i < records.length; i++) {
        seg.offsets.push(offsets[i]!);
        seg.lengths.push(records[i]!.length);
      }
      seg.size = at;
      this.writtenSeq = recordSeq(lastRecord);
    });
  }

  private async newSegment(firstSeq: number): Promise<Segment> {
    const path = join(this.dir, segmentName(firstSeq));
    const handle = await open(path, 'w+');
    const seg: Segment = { firstSeq, path, handle, offsets: [], lengths: [], size: 0 };
    this.segments.push(seg);
    // the file's name must survive a crash as its records do
    await this.syncDir();
    return seg;
  }

  private async syncDir(): Promise<void> {
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
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

  private forget(keep: (seq: number) => boolean): void {
    for (const [s, r] of this.cache) {
      if (keep(s)) continue;
      this.cacheBytes -= r.length;
      this.cache.delete(s);
    }
  }

  /** the record at seq, or undefined when it is not (or no longer) in the log */
  async get(seq: number): Promise<Buffer | undefined> {
    if (seq <= this.base.seq || seq > this.last.seq) return undefined;
    const cached = this.cache.get(seq);
    if (cached !== undefined) return cached;
    if (seq > this.writtenSeq) await this.chain;
    if (seq <= this.base.seq || seq > this.last.seq) return undefined;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i]!;
      if (seq < seg.firstSeq) continue;
      const idx = seq - seg.firstSeq;
      if (idx >= seg.offsets.length || seg.handle === null) return undefined;
      const len = seg.lengths[idx]!;
      const rec = Buffer.allocUnsafe(len);
      const { bytesRead } = await seg.handle.read(rec, 0, len, seg.offsets[idx]! + ENTRY_HEADER);
      return bytesRead === len ? rec : undefined;
    }
    return undefined;
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
    this.requireOpen();
    const term = (await this.termAt(seq)) ?? this.base.term;
    this.last = { seq, term };
    this.forget((s) => s <= seq);
    await this.serial(async () => {
      while (this.segments.length > 0) {
        const seg = this.segments[this.segments.length - 1]!;
        if (seg.firstSeq > seq) {
          // the whole file is past the cut (a segment at the base keeps its name: it is reused)
          await seg.handle?.close();
          seg.handle = null;
          await rm(seg.path, { force: true });
          this.segments.pop();
          continue;
        }
        const keep = seq - seg.firstSeq + 1;
        if (keep < seg.offsets.length) {
          const cut = seg.offsets[keep]!;
          seg.offsets.length = keep;
          seg.lengths.length = keep;
          seg.size = cut;
          await seg.handle!.truncate(cut);
          await seg.handle!.datasync();
        }
        break;
      }
      await this.syncDir();
      this.writtenSeq = Math.min(this.writtenSeq, seq);
    });
  }

  /** records that the store holds everything up to `p` (not synced: see the class comment) */
  async setApplied(p: Position): Promise<void> {
    this.applied_ = p;
    if (p.seq > this.committed_) this.committed_ = p.seq;
    await this.noteMeta();
  }

  /**
   * setApplied without a meta write of its own: the position reaches `meta` within
   * META_DEFER_MS, with whatever is noted meanwhile (or at close, or with an earlier meta
   * write). For the appliers, which note a position after every store write: one small
   * file write (a trip through libuv's pool) per record was about 5 % of a follower's main
   * thread under load. A crash loses at most that much more of `applied`, which may lag the
   * store anyway: records are blind puts and deletes, and replaying them changes nothing.
   * A failed deferred write breaks the log, as any failed write does.
   */
  noteApplied(p: Position): void {
    this.applied_ = p;
    if (p.seq > this.committed_) this.committed_ = p.seq;
    if (this.metaTimer !== null || !this.opened) return;
    this.metaTimer = setTimeout(() => {
      this.metaTimer = null;
      if (this.opened) void this.noteMeta().catch(() => {});
    }, META_DEFER_MS);
    this.metaTimer.unref();
  }

  private async writeMeta(sync: boolean): Promise<void> {
    const h = this.metaHandle;
    if (h === null) throw new Error('op log is not open');
    this.metaCounter = (this.metaCounter + 1) >>> 0;
    const b = encodeMeta(this.metaCounter, this.base, this.applied_, this.committed_, this.syncing_);
    await h.write(b, 0, META_SLOT, (this.metaCounter % 2) * META_SLOT);
    if (sync) await h.datasync();
  }

  /** drops records at or below `seq` (never above what the store applied): whole segments go */
  async prune(seq: number): Promise<void> {
    const upTo = Math.min(seq, this.applied_.seq);
    if (upTo <= this.base.seq) return;
    this.requireOpen();
    const term = (await this.termAt(upTo)) ?? this.base.term;
    if (upTo <= this.base.seq) return;
    this.base = { seq: upTo, term };
    this.forget((s) => s > upTo);
    await this.serial(async () => {
      await this.writeMeta(true);
      // a segment goes once the next one starts at or below base + 1
      while (this.segments.length > 1 && this.segments[1]!.firstSeq - 1 <= this.base.seq) {
        const seg = this.segments.shift()!;
        await seg.handle?.close();
        seg.handle = null;
        await rm(seg.path, { force: true });
      }
    });
  }

  async beginSnapshot(): Promise<void> {
    this.requireOpen();
    this.syncing_ = true;
    await this.serial(() => this.writeMeta(true));
  }

  /** after a snapshot of state `p` was installed in the store: the log restarts after it */
  async finishSnapshot(p: Position): Promise<void> {
    this.requireOpen();
    this.forget(() => false);
    await this.serial(async () => {
      this.base = p;
      this.last = p;
      this.applied_ = p;
      this.committed_ = p.seq;
      this.syncing_ = false;
      // meta first: on a crash after it, open() drops the old segments as below the base
      await this.writeMeta(true);
      for (const seg of this.segments.splice(0)) {
        await seg.handle?.close();
        await rm(seg.path, { force: true });
      }
      await this.syncDir();
      this.writtenSeq = p.seq;
    });
  }
}

async function writeAll(handle: FileHandle, parts: Buffer[], position: number): Promise<void> {
  let at = position;
  let rest = parts;
  while (rest.length > 0) {
    // writev takes at most IOV_MAX (1024) buffers per call
    const chunk = rest.slice(0, 1024);
    rest = rest.slice(1024);
    let total = 0;
    for (const b of chunk) total += b.length;
    let { bytesWritten } = await handle.writev(chunk, at);
    at += bytesWritten;
    if (bytesWritten < total) {
      // a short write: finish this chunk byte by byte range
      const flat = Buffer.concat(chunk).subarray(bytesWritten);
      let off = 0;
      while (off < flat.length) {
        ({ bytesWritten } = await handle.write(flat, off, flat.length - off, at));
        off += bytesWritten;
        at += bytesWritten;
      }
    }
  }
}
