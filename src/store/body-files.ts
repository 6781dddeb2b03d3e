import { mkdir, open, readdir, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { Logger } from 'pino';
import { DamagedRecordError, Prefix, kindRange, messageIdOfKey, readU64, writeU64 } from './keys.js';
import type { BatchOp, Db } from './native-batch.js';
import { replaceFileDurably, syncDir } from './sync-dir.js';
import type { PutValue } from './value-parts.js';

/**
 * Big message values kept outside LevelDB, in append-only files under `<data dir>/bodies/`,
 * with a small pointer under the message key in their place.
 *
 * Why: LevelDB writes every value at least twice (its log, then a table) and again at each
 * compaction it takes part in; under a backlog of big persistent bodies (64 KiB) its batches
 * and compactions were what the store spent its time on. Here a body is written once,
 * read back with one positioned read (neighbours coalesced), and its space comes back
 * whole when every message of a file is gone (the file is unlinked).
 *
 * Layout:
 *   - a file `NNNNNNNN.seg` holds records `<u32 length><u64 messageId><value>`, the value
 *     exactly as LevelDB would hold it (keys.ts encodeMessage: its own crc32c first);
 *   - the pointer under the message key: `<u32 magic><u32 file><u64 offset><u32 length>
 *     <u32 the value's crc><u32 crc32c of the 24 bytes before>` (28 bytes); a value is a
 *     pointer only when its length, magic and own checksum all match.
 *
 * Ordering: a record is appended (and, for a synced write, fdatasynced, with the directory
 * entry of a new file) before the LevelDB batch that holds its pointer is written, so a
 * durable pointer always names durable bytes. A file whose messages are all deleted is
 * unlinked only once its deletes are durable (after a later synced write) and no read or
 * snapshot is in flight. Each open starts a new file: a torn tail from a crash is never
 * appended to.
 *
 * The bookkeeping (which file holds which live message) is saved by a clean close
 * (`live.idx`, taken and removed at the next start before anything is written) and rebuilt
 * from every pointer in LevelDB after a crash (every message value is read then: recovery
 * otherwise reads only the index). It is local to a node:
 * clustering replicates whole values (its write seam comes before the local write), and a
 * leader's snapshot for a follower reads pointed-to values back (resolve).
 */

export const BODIES_DIR = 'bodies';
/** encoded message values at least this long go to the body files */
export const BODY_FILE_THRESHOLD = 16 * 1024;
/** a file is closed for appends past this size (one record may take it over) */
export const BODY_FILE_SIZE = 64 * 1024 * 1024;
/** reads of neighbouring records are merged up to this many bytes and records (2 buffers each, under IOV_MAX) */
const READ_SPAN = 4 * 1024 * 1024;
const READ_RECORDS = 256;
const RECORD_HEADER = 12;
/** the bookkeeping a clean close saves: <u32 magic><u32 n> n × <u64 id><u32 file><u32 bytes> <u32 crc32c> */
const SAVED_FILE = 'live.idx';
const SAVED_MAGIC = 0x57424c49;
/**
 * A sparse file is compacted only once none of its messages was deleted for this long: the
 * file a consumer is reading through is sparse too, and moving what it is about to consume
 * would write the backlog twice (measured: the 64 KiB flood published ~12 % less).
 */
export const COMPACT_AFTER_MS = 5000;
/** unsynced bytes of records no one waits for past which a file is synced beside the appends (pace) */
export const PACE_BYTES = 4 * 1024 * 1024;
export const POINTER_SIZE = 28;
const POINTER_MAGIC = 0xff574250;

export interface BodyPointer {
  readonly file: number;
  readonly offset: number;
  readonly length: number;
  readonly valueCrc: number;
}

/** The checksum a message value starts with (MESSAGE_CHECKSUM_SIZE octets, in its first part when in parts). */
function storedCrc(value: PutValue): number {
  return (Buffer.isBuffer(value) ? value : value.parts[0]!).readUInt32BE(0);
}

export function encodePointer(p: BodyPointer): Buffer {
  const b = Buffer.allocUnsafe(POINTER_SIZE);
  b.writeUInt32BE(POINTER_MAGIC, 0);
  b.writeUInt32BE(p.file, 4);
  writeU64(b, 8, p.offset);
  b.writeUInt32BE(p.length, 16);
  b.writeUInt32BE(p.valueCrc, 20);
  b.writeUInt32BE(crc32c(b.subarray(0, 24)) >>> 0, 24);
  return b;
}

/** whether a stored message value is a pointer to a body file (and not an inline value) */
export function isBodyPointer(v: Buffer): boolean {
  return v.length === POINTER_SIZE && v.readUInt32BE(0) === POINTER_MAGIC && v.readUInt32BE(24) === crc32c(v.subarray(0, 24)) >>> 0;
}

export function decodePointer(v: Buffer): BodyPointer {
  return { file: v.readUInt32BE(4), offset: readU64(v, 8), length: v.readUInt32BE(16), valueCrc: v.readUInt32BE(20) };
}

function fileName(no: number): string {
  return `${String(no).padStart(8, '0')}.seg`;
}

function fileNumber(name: string): number | null {
  const m = /^(\d{8})\.seg$/.exec(name);
  return m === null ? null : Number(m[1]);
}

class BodyFile {
  /** the live messages whose values are in this file: id → bytes of its record */
  readonly live = new Map<number, number>();
  /** bytes of the live records */
  liveBytes = 0;
  /** queued for compaction (sparse) */
  sparse = false;
  /** when a message of this file was last deleted (performance.now()) */
  lastDelete = 0;
  /** open for appends (the current file) */
  handle: FileHandle | null = null;
  size = 0;
  /** appended to since the last fdatasync */
  dirty = false;
  /** bytes from the start the last completed fdatasync covered */
  syncedSize = 0;
  /** a paced fdatasync of records no one waited for, in flight (BodyFiles.pace) */
  flushing: Promise<void> | null = null;
  /** that fdatasync failed: the file takes no more appends, and a write waiting for it fails */
  flushError: Error | null = null;
  /** records appended whose LevelDB write has not completed yet (never unlinked meanwhile) */
  pending = 0;
  constructor(readonly no: number) {}
}

/** what prepare appended, for committed() once LevelDB holds the pointers */
export interface Appended {
  readonly ids: number[];
  readonly files: BodyFile[];
  /** bytes of each record */
  readonly sizes: number[];
}

export interface PreparedWrite {
  readonly ops: readonly BatchOp[];
  readonly appended: Appended | null;
}

export interface BodyFilesOptions {
  /** false: nothing new is appended (values already in files are still read and freed) */
  readonly appends?: boolean;
  /** a file takes no more appends past this size; default BODY_FILE_SIZE */
  readonly fileSize?: number;
  /** a sparse file is compacted once none of its messages was deleted for this long; default COMPACT_AFTER_MS */
  readonly compactAfterMs?: number;
}

/**
 * Values are appended to one of two files at a time: new messages, and values moved by
 * compaction. Survivors then end up together, in files that stay dense; were they appended
 * among new messages, a long-lived one would be moved again each time the file it landed in
 * emptied around it (once per file of traffic).
 */
const enum Gen {
  New = 0,
  Moved = 1,
}

export class BodyFiles {
  private readonly appends: boolean;
  private readonly fileSize: number;
  private readonly compactAfterMs: number;
  private readonly files = new Map<number, BodyFile>();
  /** live message id → the file holding its value */
  private readonly where = new Map<number, BodyFile>();
  /** the files appended to now, by generation */
  private readonly heads: Array<BodyFile | null> = [null, null];
  /** files closed with records no one waited for still unsynced: a clean close syncs them */
  private readonly closedDirty = new Set<BodyFile>();
  /** message ids whose values compaction is moving (appended to the Moved generation's file) */
  private readonly moving = new Set<number>();
  private nextNo = 1;
  private dirReady = false;
  /** files whose last message is gone, waiting for their deletes to be durable */
  private emptied: BodyFile[] = [];
  /** files whose deletes are durable, waiting for reads and snapshots to finish */
  private unlinkable: BodyFile[] = [];
  private holds = 0;
  /** files to compact, oldest first */
  private sparseFiles: BodyFile[] = [];
  /** unlinks wait for recovery to be accepted (a refused start puts the store back as it was) */
  private started = false;
  private unlinking: Promise<void> = Promise.resolve();
  /** the bookkeeping is complete (load() finished): it may be saved at close */
  private loaded = false;
  private appendTurn: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
    options: BodyFilesOptions = {},
  ) {
    this.appends = options.appends ?? true;
    this.fileSize = options.fileSize ?? BODY_FILE_SIZE;
    this.compactAfterMs = options.compactAfterMs ?? COMPACT_AFTER_MS;
  }

  /** live messages held in body files */
  get liveMessages(): number {
    return this.where.size;
  }

  /** body files on disk (current one included) */
  get fileCount(): number {
    return this.files.size;
  }

  /**
   * Rebuilds the bookkeeping from the pointers LevelDB holds. Files no pointer names are
   * unlinked at start(); a pointer to a missing file is left for the read to quarantine.
   */
  async load(db: Db): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
      this.dirReady = true;
    } catch (e) {
      if ((e as { code?: unknown }).code === 'ENOENT') {
        this.loaded = true;
        return;
      }
      throw e;
    }
    for (const name of names) {
      const no = fileNumber(name);
      if (no === null) continue;
      this.files.set(no, new BodyFile(no));
      if (no >= this.nextNo) this.nextNo = no + 1;
    }
    // the bookkeeping a clean close saved; gone before anything is written, so a crash
    // after this start leaves none and the next start scans
    const saved = await this.takeSaved();
    let missing = 0;
    if (saved !== null) {
      for (const [id, no, bytes] of saved) {
        const f = this.files.get(no);
        if (f === undefined) missing++;
        else this.track(id, f, bytes);
      }
    } else if (this.files.size > 0) {
      // every message value is read: moved values keep their old ids, so no id range can be left out
      const it = db.iterator(kindRange(Prefix.Message));
      try {
        for (;;) {
          const rows = await it.nextv(1000);
          if (rows.length === 0) break;
          for (const [key, value] of rows) {
            if (!isBodyPointer(value)) continue;
            const f = this.files.get(decodePointer(value).file);
            if (f === undefined) {
              missing++;
              continue;
            }
            this.track(messageIdOfKey(key), f, RECORD_HEADER + decodePointer(value).length);
          }
        }
      } finally {
        await it.close();
      }
    }
    this.loaded = true;
    if (missing > 0) this.logger.error({ messages: missing, dir: this.dir }, 'store: messages point to body files that are missing; they are moved to quarantine when read');
    for (const f of this.files.values()) {
      if (f.live.size === 0) this.unlinkable.push(f);
      else this.checkSparse(f);
    }
  }

  /**
   * Reads and removes the bookkeeping saved by the last clean close (null when there is none
   * or it does not check out: the caller scans the store instead).
   */
  private async takeSaved(): Promise<Array<[number, number, number]> | null> {
    const path = join(this.dir, SAVED_FILE);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch {
      return null;
    }
    await unlink(path);
    await syncDir(this.dir);
    const n = (buf.length - 12) / 16;
    if (buf.length < 12 || !Number.isInteger(n) || buf.readUInt32BE(0) !== SAVED_MAGIC || buf.readUInt32BE(4) !== n || buf.readUInt32BE(buf.length - 4) !== crc32c(buf.subarray(0, buf.length - 4)) >>> 0) {
      this.logger.warn({ file: path }, 'store: the saved body-file bookkeeping does not check out; the store is scanned instead');
      return null;
    }
    const out: Array<[number, number, number]> = [];
    for (let k = 0; k < n; k++) {
      const o = 8 + 16 * k;
      out.push([readU64(buf, o), buf.readUInt32BE(o + 8), buf.readUInt32BE(o + 12)]);
    }
    return out;
  }

  /** Saves the bookkeeping for the next start (at a clean close, after the last write). */
  private async save(): Promise<void> {
    if (!this.loaded || this.where.size === 0) return;
    const buf = Buffer.allocUnsafe(12 + 16 * this.where.size);
    buf.writeUInt32BE(SAVED_MAGIC, 0);
    buf.writeUInt32BE(this.where.size, 4);
    let o = 8;
    for (const [id, f] of this.where) {
      writeU64(buf, o, id);
      buf.writeUInt32BE(f.no, o + 8);
      buf.writeUInt32BE(f.live.get(id) ?? 0, o + 12);
      o += 16;
    }
    buf.writeUInt32BE(crc32c(buf.subarray(0, o)) >>> 0, o);
    await replaceFileDurably(join(this.dir, SAVED_FILE), buf);
  }

  /** recovery was accepted: files nothing points to may go */
  start(): void {
    this.started = true;
    this.unlinkReady();
  }

  /** whether `ops` hold a value for the body files (checked before prepare, which is async) */
  wants(ops: readonly BatchOp[]): boolean {
    if (!this.appends) return false;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.type === 'put' && op.key[0] === Prefix.Message && op.value.length >= BODY_FILE_THRESHOLD) return true;
    }
    return false;
  }

  /**
   * Appends the big message values among `ops` and returns the operations with pointers in
   * their place (the caller's array is never changed: the durable log keeps it to retry a
   * failed write). Nothing is recorded until committed(): a LevelDB write that fails leaves
   * the appended bytes as dead space.
   */
  async prepare(ops: readonly BatchOp[], sync: boolean): Promise<PreparedWrite> {
    // one append at a time (a retried write and the next commit may overlap)
    const turn = this.appendTurn.then(() => this.append(ops, sync));
    this.appendTurn = turn.then(
      () => {},
      () => {},
    );
    return turn;
  }

  private async append(ops: readonly BatchOp[], sync: boolean): Promise<PreparedWrite> {
    // a synced write syncs its records only when someone waits for one of them: records of
    // messages published without confirms (ValueParts.unawaited) go to disk when the kernel
    // writes them back, or with the next write that needs its file synced
    const syncNeeded = sync && this.awaitsAny(ops);
    const out = ops.slice();
    const ids: number[] = [];
    const files: BodyFile[] = [];
    const sizes: number[] = [];
    const touched = new Set<BodyFile>();
    // records for one file, written with one writev from `start`
    let file: BodyFile | null = null;
    let fileGen = 0;
    let chunks: Buffer[] = [];
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.type !== 'put' || op.key[0] !== Prefix.Message || op.value.length < BODY_FILE_THRESHOLD) continue;
      const value = op.value;
      const record = RECORD_HEADER + value.length;
      const id = messageIdOfKey(op.key);
      // values moved by compaction go to files of their own (see Gen)
      const gen = this.moving.has(id) ? Gen.Moved : Gen.New;
      if (file === null || gen !== fileGen || start + bytes + record > this.fileSize) {
        if (file !== null) await this.writeChunk(file, chunks, start, bytes);
        const cur = this.heads[gen];
        const f: BodyFile = cur !== null && cur.handle !== null && cur.flushError === null && (cur.size === 0 || cur.size + record <= this.fileSize) ? cur : await this.newFile(gen, syncNeeded);
        file = f;
        fileGen = gen;
        chunks = [];
        start = f.size;
        bytes = 0;
      }
      const head = Buffer.allocUnsafe(RECORD_HEADER);
      head.writeUInt32BE(value.length, 0);
      writeU64(head, 4, id);
      const offset = start + bytes + RECORD_HEADER;
      if (Buffer.isBuffer(value)) chunks.push(head, value);
      else chunks.push(head, ...value.parts);
      bytes += record;
      out[i] = { type: 'put', key: op.key, value: encodePointer({ file: file.no, offset, length: value.length, valueCrc: storedCrc(value) }) };
      ids.push(id);
      files.push(file);
      sizes.push(record);
      file.pending++;
      touched.add(file);
    }
    if (file !== null) await this.writeChunk(file, chunks, start, bytes);
    if (syncNeeded) {
      for (const f of touched) if (f.handle !== null) await this.syncFile(f, f.handle);
    } else {
      for (const f of touched) this.pace(f);
    }
    return { ops: out, appended: ids.length === 0 ? null : { ids, files, sizes } };
  }

  /**
   * Syncs what was appended to `f` for a write that waits for it. A paced fdatasync in flight
   * is waited for first: Linux reports a failed writeback once per open file, and that one
   * may be the call that hears it.
   */
  private async syncFile(f: BodyFile, h: FileHandle): Promise<void> {
    if (f.flushing !== null) await f.flushing;
    if (f.flushError !== null) throw f.flushError;
    if (!f.dirty) return;
    const upTo = f.size;
    await h.datasync();
    f.syncedSize = Math.max(f.syncedSize, upTo);
    f.dirty = f.size > f.syncedSize;
  }

  /**
   * Records no one waits for (messages published without confirms) are not synced by their
   * write, but they are not left to pile up either: once PACE_BYTES of them are unsynced in
   * a file, an fdatasync starts beside the appends (not waited for). The kernel would start
   * writing them back only past its dirty ratio (gigabytes), and then a small synced write
   * of another queue (its journal commit on ext4) would wait for all of it: measured in the
   * 64 KiB flood, the bystander's longest confirm wait went from ~80 ms to 300–500 ms
   * without pacing.
   */
  private pace(f: BodyFile): void {
    const h = f.handle;
    if (h === null || f.flushing !== null || f.flushError !== null || f.size - f.syncedSize < PACE_BYTES) return;
    const upTo = f.size;
    f.flushing = h.datasync().then(
      () => {
        f.syncedSize = Math.max(f.syncedSize, upTo);
        f.dirty = f.size > f.syncedSize;
        f.flushing = null;
      },
      (e: unknown) => {
        f.flushError = e instanceof Error ? e : new Error(String(e));
        f.flushing = null;
        this.logger.warn({ err: e, file: fileName(f.no) }, 'store: syncing a body file failed; it takes no more appends');
      },
    );
  }

  /** whether a value for the files among `ops` is one someone waits to see on disk */
  private awaitsAny(ops: readonly BatchOp[]): boolean {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.type !== 'put' || op.key[0] !== Prefix.Message || op.value.length < BODY_FILE_THRESHOLD) continue;
      if (Buffer.isBuffer(op.value) || !op.value.unawaited) return true;
    }
    return false;
  }

  private async writeChunk(f: BodyFile, chunks: Buffer[], start: number, bytes: number): Promise<void> {
    if (chunks.length === 0) return;
    await writeAll(f.handle!, chunks, start);
    f.size = start + bytes;
    f.dirty = true;
  }

  /** a new file to append `gen` to; the one before (full, or from before) takes no more appends */
  private async newFile(gen: Gen, syncRetired: boolean): Promise<BodyFile> {
    const cur = this.heads[gen];
    if (!this.dirReady) {
      await mkdir(this.dir, { recursive: true });
      this.dirReady = true;
    }
    const no = this.nextNo++;
    const f = new BodyFile(no);
    f.handle = await open(join(this.dir, fileName(no)), 'wx');
    // the new name must be durable before any durable pointer names it
    await syncDir(this.dir);
    this.files.set(no, f);
    this.heads[gen] = f;
    if (cur !== null) await this.retire(cur, syncRetired);
    return f;
  }

  /**
   * A full file takes no more appends; its bytes go to disk here when the write that filled
   * it waits for them. Records a write appended before it moved to a new file are synced
   * only here: a failed sync fails that write.
   */
  private async retire(f: BodyFile, sync: boolean): Promise<void> {
    const h = f.handle;
    f.handle = null;
    if (f.live.size === 0 && !this.emptied.includes(f)) this.emptied.push(f);
    if (h === null) return;
    try {
      if (f.flushing !== null) await f.flushing;
      // unsynced records left in it are ones no one waits for (append's syncNeeded)
      if (sync) await this.syncFile(f, h);
      if (f.dirty) this.closedDirty.add(f);
    } finally {
      await h.close().catch(() => {});
    }
  }

  /**
   * LevelDB holds `ops` (the pointers prepare made, and any deletes): records the new live
   * values, forgets deleted ones, and unlinks files left empty once that is durable.
   */
  /** files were emptied and are removed after the next synced write */
  get waitsForSyncedWrite(): boolean {
    return this.emptied.length > 0;
  }

  committed(ops: readonly BatchOp[], appended: Appended | null, sync: boolean): void {
    if (appended !== null) {
      for (let i = 0; i < appended.ids.length; i++) {
        const id = appended.ids[i]!;
        const f = appended.files[i]!;
        f.pending--;
        const old = this.where.get(id);
        if (old !== undefined) this.forget(id, old);
        this.track(id, f, appended.sizes[i]!);
      }
    }
    if (this.where.size > 0) {
      for (const op of ops) {
        if (op.key[0] !== Prefix.Message) continue;
        if (op.type === 'put' && Buffer.isBuffer(op.value) && isBodyPointer(op.value)) continue;
        const id = messageIdOfKey(op.key);
        const f = this.where.get(id);
        if (f !== undefined) this.forget(id, f);
      }
    }
    if (sync && this.emptied.length > 0) {
      // every earlier write is durable now (LevelDB's log is written in order)
      for (const f of this.emptied) if (f.live.size === 0 && f.pending === 0 && !this.isHead(f) && !this.unlinkable.includes(f)) this.unlinkable.push(f);
      this.emptied = [];
      this.unlinkReady();
    }
  }

  /** the LevelDB write of what prepare appended failed: those records are dead space */
  abandoned(appended: Appended | null): void {
    if (appended === null) return;
    for (const f of appended.files) {
      f.pending--;
      if (f.live.size === 0 && f.pending === 0 && !this.isHead(f)) this.emptied.push(f);
    }
  }

  private isHead(f: BodyFile): boolean {
    return f === this.heads[0] || f === this.heads[1];
  }

  /** compaction is about to put `id`'s value again: it goes to the moved values' file */
  moveValue(id: number): void {
    this.moving.add(id);
  }

  private track(id: number, f: BodyFile, bytes: number): void {
    this.moving.delete(id);
    f.live.set(id, bytes);
    f.liveBytes += bytes;
    this.where.set(id, f);
  }

  private forget(id: number, f: BodyFile): void {
    this.moving.delete(id);
    f.lastDelete = performance.now();
    f.liveBytes -= f.live.get(id) ?? 0;
    f.live.delete(id);
    this.where.delete(id);
    if (f.live.size === 0 && !this.isHead(f)) this.emptied.push(f);
    else this.checkSparse(f);
  }

  /**
   * A full file whose live records take less than half of it is compacted: its live values
   * are written again (LevelStore.compactBodies puts them through the group commit, which
   * appends them to a file of moved values and moves their pointers), and the file goes once
   * empty. Without it, one long-lived message would keep a whole file on disk: a queue that
   * gets one big message now and then, never consumed, beside a busy one, would pin a file
   * for every one of them. Disk use stays within about twice the live bytes.
   */
  private checkSparse(f: BodyFile): void {
    if (f.sparse || this.isHead(f) || !this.appends || f.live.size === 0) return;
    if (f.size < this.fileSize / 2 || f.liveBytes * 2 >= f.size) return;
    f.sparse = true;
    this.sparseFiles.push(f);
  }

  /**
   * Up to `max` live message ids of the next file to compact (null when none is), for
   * LevelStore.compactBodies, which calls again until the file has none left.
   */
  nextCompaction(max: number): { file: number; ids: number[] } | null {
    const now = performance.now();
    for (let k = 0; k < this.sparseFiles.length; ) {
      const f = this.sparseFiles[k]!;
      if (f.live.size === 0 || !this.files.has(f.no)) {
        f.sparse = false;
        this.sparseFiles.splice(k, 1);
        continue;
      }
      // a file consumers are still working through empties by itself: only one left
      // alone for a while holds messages that stay
      if (now - f.lastDelete < this.compactAfterMs) {
        k++;
        continue;
      }
      const ids: number[] = [];
      for (const id of f.live.keys()) {
        ids.push(id);
        if (ids.length >= max) break;
      }
      return { file: f.no, ids };
    }
    return null;
  }

  /** a file compaction could not empty (values it cannot read stay where they are until read) */
  skipCompaction(file: number): void {
    const k = this.sparseFiles.findIndex((f) => f.no === file);
    if (k >= 0) this.sparseFiles.splice(k, 1);
  }

  /** whether message `id`'s value is (still) in file `file` */
  isIn(file: number, id: number): boolean {
    return this.where.get(id)?.no === file;
  }

  /**
   * Reads pointed-to values. Returns, per pointer, the value or the DamagedRecordError that
   * says why it cannot be read (missing file, short read, a record that is not this one).
   */
  async read(items: ReadonlyArray<{ readonly messageId: number; readonly pointer: Buffer }>): Promise<Array<Buffer | DamagedRecordError>> {
    const out: Array<Buffer | DamagedRecordError> = new Array(items.length);
    const order = items.map((it, i) => ({ i, id: it.messageId, p: decodePointer(it.pointer) }));
    order.sort((a, b) => a.p.file - b.p.file || a.p.offset - b.p.offset);
    this.holds++;
    try {
      let k = 0;
      while (k < order.length) {
        const file = order[k]!.p.file;
        let end = k;
        while (end < order.length && order[end]!.p.file === file) end++;
        await this.readFile(file, order.slice(k, end), out);
        k = end;
      }
    } finally {
      this.release();
    }
    return out;
  }

  private async readFile(no: number, wanted: ReadonlyArray<{ i: number; id: number; p: BodyPointer }>, out: Array<Buffer | DamagedRecordError>): Promise<void> {
    let h: FileHandle;
    try {
      h = await open(join(this.dir, fileName(no)), 'r');
    } catch (e) {
      const why = new DamagedRecordError(`body file ${fileName(no)} cannot be opened: ${(e as Error).message}`);
      for (const w of wanted) out[w.i] = why;
      return;
    }
    try {
      let k = 0;
      while (k < wanted.length) {
        // a span of neighbouring records (each with its header), read at once
        const start = wanted[k]!.p.offset - RECORD_HEADER;
        let end = k + 1;
        let stop = wanted[k]!.p.offset + wanted[k]!.p.length;
        while (end < wanted.length) {
          const next = wanted[end]!.p;
          if (next.offset - RECORD_HEADER !== stop || next.offset + next.length - start > READ_SPAN || end - k >= READ_RECORDS) break;
          stop = next.offset + next.length;
          end++;
        }
        // one scattered read: each value lands in a buffer of its own (a value kept in memory
        // never holds its neighbours), the headers in one small buffer
        const n = end - k;
        const heads = Buffer.allocUnsafe(RECORD_HEADER * n);
        const buffers: Buffer[] = [];
        for (let j = k; j < end; j++) {
          buffers.push(heads.subarray((j - k) * RECORD_HEADER, (j - k + 1) * RECORD_HEADER), Buffer.allocUnsafe(wanted[j]!.p.length));
        }
        const got = await readAll(h, buffers, start);
        for (let j = k; j < end; j++) {
          const w = wanted[j]!;
          const at = w.p.offset - RECORD_HEADER - start;
          if (at + RECORD_HEADER + w.p.length > got) {
            out[w.i] = new DamagedRecordError(`body file ${fileName(no)} ends before the record at ${w.p.offset} (${w.p.length} bytes)`);
            continue;
          }
          const head = buffers[2 * (j - k)]!;
          const len = head.readUInt32BE(0);
          const id = readU64(head, 4);
          const value = buffers[2 * (j - k) + 1]!;
          if (len !== w.p.length || id !== w.id || value.readUInt32BE(0) !== w.p.valueCrc) {
            out[w.i] = new DamagedRecordError(`body file ${fileName(no)} holds another record at ${w.p.offset} (length ${len}, message ${id})`);
            continue;
          }
          out[w.i] = value;
        }
        k = end;
      }
    } catch (e) {
      const why = new DamagedRecordError(`body file ${fileName(no)} cannot be read: ${(e as Error).message}`);
      for (const w of wanted) if (out[w.i] === undefined) out[w.i] = why;
    } finally {
      await h.close().catch(() => {});
    }
  }

  /** Resolves pointer values among rows of any kind (a cluster snapshot); other rows pass as they are. */
  async resolve(rows: Array<[Buffer, Buffer]>): Promise<Array<[Buffer, Buffer]>> {
    const wanted: Array<{ row: number; messageId: number; pointer: Buffer }> = [];
    for (let r = 0; r < rows.length; r++) {
      const [key, value] = rows[r]!;
      if (key[0] === Prefix.Message && isBodyPointer(value)) wanted.push({ row: r, messageId: messageIdOfKey(key), pointer: value });
    }
    if (wanted.length === 0) return rows;
    const got = await this.read(wanted);
    const out = rows.slice();
    for (let w = 0; w < wanted.length; w++) {
      const v = got[w]!;
      // an unreadable value goes as its pointer: the follower quarantines it when it reads it, as this node would
      if (!(v instanceof Error)) out[wanted[w]!.row] = [rows[wanted[w]!.row]![0], v];
    }
    return out;
  }

  /** keeps every file in place until the returned function is called (a snapshot being read) */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release();
    };
  }

  private release(): void {
    if (--this.holds === 0) this.unlinkReady();
  }

  private unlinkReady(): void {
    if (!this.started || this.holds > 0 || this.unlinkable.length === 0) return;
    const gone = this.unlinkable;
    this.unlinkable = [];
    for (const f of gone) {
      // a file written to again meanwhile (a retried write) stays
      if (f.live.size > 0 || f.pending > 0 || this.isHead(f) || !this.files.has(f.no)) continue;
      this.files.delete(f.no);
      this.closedDirty.delete(f);
      this.unlinking = this.unlinking.then(() =>
        unlink(join(this.dir, fileName(f.no))).catch((err: unknown) => {
          if ((err as { code?: unknown }).code !== 'ENOENT') this.logger.warn({ err, file: fileName(f.no) }, 'store: could not remove an empty body file');
        }),
      );
    }
  }

  /** every file's bytes to disk and the current files' handles closed; pending unlinks finished */
  async close(): Promise<void> {
    const heads = this.heads.splice(0, 2, null, null);
    for (const f of heads) if (f !== null) await this.retire(f, true);
    await this.unlinking;
    // records of messages published without confirms that the kernel may not have written yet
    for (const f of this.closedDirty) {
      if (!this.files.has(f.no)) continue;
      const h = await open(join(this.dir, fileName(f.no)), 'r+').catch(() => null);
      if (h === null) continue;
      try {
        await h.datasync();
        f.dirty = false;
      } finally {
        await h.close().catch(() => {});
      }
    }
    this.closedDirty.clear();
    await this.save().catch((err: unknown) => this.logger.warn({ err }, 'store: could not save the body-file bookkeeping; the next start scans the store'));
    this.loaded = false;
  }
}

async function writeAll(h: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let pos = position;
  let rest = chunks;
  // writev may write less than asked (a signal, a full disk midway): go on from there
  while (rest.length > 0) {
    const { bytesWritten } = await h.writev(rest, pos);
    pos += bytesWritten;
    let n = bytesWritten;
    let k = 0;
    while (k < rest.length && n >= rest[k]!.length) n -= rest[k++]!.length;
    rest = rest.slice(k);
    if (n > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(n);
    if (bytesWritten === 0 && rest.length > 0) throw new Error('no progress writing a body file');
  }
}

/** reads into `buffers` in order from `position` until they are full or the file ends; returns the bytes read */
async function readAll(h: FileHandle, buffers: Buffer[], position: number): Promise<number> {
  let total = 0;
  let rest = buffers;
  while (rest.length > 0) {
    const { bytesRead } = await h.readv(rest, position + total);
    if (bytesRead === 0) break;
    total += bytesRead;
    let n = bytesRead;
    let k = 0;
    while (k < rest.length && n >= rest[k]!.length) n -= rest[k++]!.length;
    rest = rest.slice(k);
    if (n > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(n);
  }
  return total;
}
