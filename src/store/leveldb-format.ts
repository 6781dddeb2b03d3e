/**
 * Read-only decoders of LevelDB's on-disk files (the LevelDB 1.20 that classic-level
 * bundles), so that Warren can check a data directory before LevelDB opens it.
 *
 * Why: classic-level exposes neither `paranoid_checks` nor `verify_checksums` (its open
 * options are createIfMissing, errorIfExists, compression, cacheSize, writeBufferSize,
 * blockSize, maxOpenFiles, blockRestartInterval, maxFileSize, multithreading; its read
 * options fillCache only). Without them LevelDB skips damaged log records at open, reads
 * table blocks without checking their CRCs, and deletes the files a short MANIFEST does
 * not name. These decoders do the checks those options would have done, and more.
 *
 * Formats (LevelDB's doc/log_format.md and doc/table_format.md):
 * - log files (`NNNNNN.log`, the write-ahead log, and `MANIFEST-NNNNNN`): 32 KiB blocks of
 *   records, each <crc32c masked u32 LE><length u16 LE><type u8><payload>; a record too big
 *   for the rest of a block is split into FIRST/MIDDLE/LAST fragments.
 * - MANIFEST records are VersionEdits (tagged varint fields); the last state names the live
 *   table files with their sizes, the log number and the next file number.
 * - write-ahead log records are WriteBatches: <sequence u64 LE><count u32 LE> then count
 *   operations, each <tag u8> <key: varint length + bytes> [<value: varint length + bytes>].
 * - table files (`NNNNNN.ldb`, older `.sst`): blocks, each followed by <type u8><crc32c
 *   masked u32 LE> over block + type; a 48-byte footer at the end holds the metaindex and
 *   index block handles and a magic number; the index block maps to every data block.
 */
import { crc32c } from '@node-rs/crc32';

export const LOG_BLOCK_SIZE = 32768;
const LOG_HEADER_SIZE = 7;
const MASK_DELTA = 0xa282ead8;

export const enum LogRecordType {
  Zero = 0,
  Full = 1,
  First = 2,
  Middle = 3,
  Last = 4,
}

/** LevelDB's masked CRC of `data` (crc32c rotated and offset, so a CRC of CRCs is not trivial). */
export function maskedCrc(data: Buffer): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

// ------------------------------------------------------------------ file names

export type LevelFileKind = 'current' | 'lock' | 'info-log' | 'manifest' | 'log' | 'table' | 'temp';

export interface LevelFileName {
  readonly kind: LevelFileKind;
  /** the file number (0 for CURRENT, LOCK, LOG) */
  readonly number: number;
}

/** LevelDB's ParseFileName: which of its files a directory entry is, or null for anything else. */
export function parseLevelFileName(name: string): LevelFileName | null {
  if (name === 'CURRENT') return { kind: 'current', number: 0 };
  if (name === 'LOCK') return { kind: 'lock', number: 0 };
  if (name === 'LOG' || name === 'LOG.old') return { kind: 'info-log', number: 0 };
  let m = /^MANIFEST-([0-9]+)$/.exec(name);
  if (m !== null) return { kind: 'manifest', number: Number(m[1]) };
  m = /^([0-9]+)\.(log|ldb|sst|dbtmp)$/.exec(name);
  if (m === null) return null;
  const kind = m[2] === 'log' ? 'log' : m[2] === 'dbtmp' ? 'temp' : 'table';
  return { kind, number: Number(m[1]) };
}

/** One of LevelDB's files, other than LOCK (which only holds the lock while a process has the store open). */
export function isLevelDbFile(name: string): boolean {
  const parsed = parseLevelFileName(name);
  return parsed !== null && parsed.kind !== 'lock';
}

export function tableFileName(number: number, ext = 'ldb'): string {
  return `${String(number).padStart(6, '0')}.${ext}`;
}

export function logFileName(number: number): string {
  return `${String(number).padStart(6, '0')}.log`;
}

// ------------------------------------------------------------------ varints

class Cursor {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** a varint up to 2^53 (LevelDB's varint64; file numbers and sizes stay far below) */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new FormatError('varint runs past its container');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) throw new FormatError('varint too large');
        return result;
      }
      mul *= 128;
    }
    throw new FormatError('varint longer than 10 bytes');
  }

  bytes(n: number): Buffer {
    if (n > this.end - this.pos) throw new FormatError('length runs past its container');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  lengthPrefixed(): Buffer {
    return this.bytes(this.varint());
  }
}

export class FormatError extends Error {
  override readonly name = 'FormatError';
}

// ------------------------------------------------------------------ log files

export interface LogRecord {
  /** offset of the record's first fragment header */
  readonly offset: number;
  readonly data: Buffer;
}

export interface LogCorruption {
  readonly offset: number;
  /** bytes LevelDB would drop here */
  readonly bytes: number;
  readonly reason: string;
}

export interface LogContents {
  readonly records: LogRecord[];
  /** damage LevelDB would report (and, without paranoid checks, silently skip) */
  readonly corruptions: LogCorruption[];
  /**
   * A record cut off by the end of the file: what a writer that died mid-write leaves,
   * which LevelDB ignores without a word. After a clean close it means the file was cut.
   */
  readonly truncatedTail: { readonly offset: number; readonly bytes: number } | null;
}

/**
 * Reads a whole log-format file as LevelDB's log::Reader does (checksums on), but keeps
 * every problem instead of dropping it: CRC mismatches, impossible lengths, fragments out
 * of order, and a record cut off at the end.
 */
export function readLogFile(file: Buffer): LogContents {
  const records: LogRecord[] = [];
  const corruptions: LogCorruption[] = [];
  let truncatedTail: { offset: number; bytes: number } | null = null;
  let fragments: Buffer[] | null = null;
  let fragmentsStart = 0;
  let fragmentsBytes = 0;

  const dropFragments = (reason: string): void => {
    if (fragments !== null) corruptions.push({ offset: fragmentsStart, bytes: fragmentsBytes, reason });
    fragments = null;
    fragmentsBytes = 0;
  };

  for (let blockStart = 0; blockStart < file.length; blockStart += LOG_BLOCK_SIZE) {
    const blockEnd = Math.min(blockStart + LOG_BLOCK_SIZE, file.length);
    const lastBlock = blockEnd === file.length && blockEnd - blockStart < LOG_BLOCK_SIZE;
    let pos = blockStart;
    while (blockEnd - pos >= LOG_HEADER_SIZE) {
      const length = file.readUInt16LE(pos + 4);
      const type = file[pos + 6]!;
      if (pos + LOG_HEADER_SIZE + length > blockEnd) {
        if (lastBlock) {
          // the file ends inside this record: a writer that died mid-write, or a cut file
          truncatedTail = { offset: fragments !== null ? fragmentsStart : pos, bytes: file.length - (fragments !== null ? fragmentsStart : pos) };
          fragments = null;
        } else {
          corruptions.push({ offset: pos, bytes: blockEnd - pos, reason: 'bad record length' });
          dropFragments('error in middle of record');
        }
        pos = blockEnd;
        break;
      }
      if (type === LogRecordType.Zero && length === 0) {
        // preallocated space (LevelDB's mmap writer): skip the rest of the block
        pos = blockEnd;
        break;
      }
      const expected = file.readUInt32LE(pos);
      if (maskedCrc(file.subarray(pos + 6, pos + LOG_HEADER_SIZE + length)) !== expected) {
        // the length itself may be wrong: LevelDB drops the rest of the block
        corruptions.push({ offset: pos, bytes: blockEnd - pos, reason: 'checksum mismatch' });
        dropFragments('error in middle of record');
        pos = blockEnd;
        break;
      }
      const payload = file.subarray(pos + LOG_HEADER_SIZE, pos + LOG_HEADER_SIZE + length);
      switch (type) {
        case LogRecordType.Full:
          if (fragments !== null && fragmentsBytes > 0) dropFragments('partial record without end');
          fragments = null;
          records.push({ offset: pos, data: payload });
          break;
        case LogRecordType.First:
          if (fragments !== null && fragmentsBytes > 0) dropFragments('partial record without end');
          fragments = [payload];
          fragmentsStart = pos;
          fragmentsBytes = payload.length;
          break;
        case LogRecordType.Middle:
        case LogRecordType.Last:
          if (fragments === null) {
            corruptions.push({ offset: pos, bytes: payload.length, reason: 'missing start of fragmented record' });
            break;
          }
          fragments.push(payload);
          fragmentsBytes += payload.length;
          if (type === LogRecordType.Last) {
            records.push({ offset: fragmentsStart, data: Buffer.concat(fragments) });
            fragments = null;
            fragmentsBytes = 0;
          }
          break;
        default:
          corruptions.push({ offset: pos, bytes: payload.length, reason: `unknown record type ${type}` });
          dropFragments('error in middle of record');
      }
      pos += LOG_HEADER_SIZE + length;
    }
    // fewer than 7 bytes left in a full block: the writer's zero trailer
    if (lastBlock && pos < blockEnd && truncatedTail === null) {
      const tail = file.subarray(pos, blockEnd);
      if (tail.some((b) => b !== 0) || fragments !== null) {
        const start = fragments !== null ? fragmentsStart : pos;
        truncatedTail = { offset: start, bytes: file.length - start };
        fragments = null;
      }
    }
  }
  if (fragments !== null) truncatedTail = { offset: fragmentsStart, bytes: file.length - fragmentsStart };
  return { records, corruptions, truncatedTail };
}

// ------------------------------------------------------------------ write batches (WAL records)

export interface WriteBatchInfo {
  readonly sequence: number;
  readonly count: number;
}

/** Decodes a WAL record's WriteBatch header and checks that its operations fill it exactly. */
export function checkWriteBatch(record: Buffer): WriteBatchInfo {
  if (record.length < 12) throw new FormatError('write batch shorter than its header');
  const sequence = record.readUInt32LE(0) + record.readUInt32LE(4) * 0x1_0000_0000;
  const count = record.readUInt32LE(8);
  const c = new Cursor(record, 12, record.length);
  let n = 0;
  while (!c.done) {
    const tag = c.bytes(1)[0];
    if (tag === 1) {
      c.lengthPrefixed();
      c.lengthPrefixed();
    } else if (tag === 0) {
      c.lengthPrefixed();
    } else {
      throw new FormatError(`unknown write batch tag ${String(tag)}`);
    }
    n++;
  }
  if (n !== count) throw new FormatError(`write batch says ${count} operations, holds ${n}`);
  return { sequence, count };
}

// ------------------------------------------------------------------ MANIFEST (VersionEdits)

export interface LiveTable {
  readonly level: number;
  readonly number: number;
  readonly size: number;
}

export interface ManifestState {
  readonly comparator: string | null;
  readonly logNumber: number | null;
  readonly prevLogNumber: number;
  readonly nextFile: number | null;
  readonly lastSequence: number | null;
  /** live table files after every edit, by number */
  readonly tables: ReadonlyMap<number, LiveTable>;
}

const enum EditTag {
  Comparator = 1,
  LogNumber = 2,
  NextFileNumber = 3,
  LastSequence = 4,
  CompactPointer = 5,
  DeletedFile = 6,
  NewFile = 7,
  PrevLogNumber = 9,
}

/** Applies every VersionEdit of a MANIFEST in order, as VersionSet::Recover does. */
export function decodeManifest(records: readonly LogRecord[]): ManifestState {
  let comparator: string | null = null;
  let logNumber: number | null = null;
  let prevLogNumber = 0;
  let nextFile: number | null = null;
  let lastSequence: number | null = null;
  const tables = new Map<number, LiveTable>();
  for (const record of records) {
    const c = new Cursor(record.data, 0, record.data.length);
    try {
      while (!c.done) {
        const tag = c.varint();
        switch (tag) {
          case EditTag.Comparator:
            comparator = c.lengthPrefixed().toString('latin1');
            break;
          case EditTag.LogNumber:
            logNumber = c.varint();
            break;
          case EditTag.NextFileNumber:
            nextFile = c.varint();
            break;
          case EditTag.LastSequence:
            lastSequence = c.varint();
            break;
          case EditTag.PrevLogNumber:
            prevLogNumber = c.varint();
            break;
          case EditTag.CompactPointer:
            c.varint();
            c.lengthPrefixed();
            break;
          case EditTag.DeletedFile: {
            c.varint();
            tables.delete(c.varint());
            break;
          }
          case EditTag.NewFile: {
            const level = c.varint();
            const number = c.varint();
            const size = c.varint();
            c.lengthPrefixed();
            c.lengthPrefixed();
            tables.set(number, { level, number, size });
            break;
          }
          default:
            throw new FormatError(`unknown tag ${tag}`);
        }
      }
    } catch (e) {
      if (e instanceof FormatError) throw new FormatError(`MANIFEST record at offset ${record.offset}: ${e.message}`);
      throw e;
    }
  }
  return { comparator, logNumber, prevLogNumber, nextFile, lastSequence, tables };
}

// ------------------------------------------------------------------ table files

const TABLE_FOOTER_SIZE = 48;
const TABLE_MAGIC_LO = 0x8b80fb57;
const TABLE_MAGIC_HI = 0xdb477524;
const BLOCK_TRAILER_SIZE = 5;
const NO_COMPRESSION = 0;
const SNAPPY_COMPRESSION = 1;

export interface TableProblem {
  readonly offset: number;
  readonly reason: string;
  /** the offset of the damaged block's type byte (in its trailer), when the block's extent is known */
  readonly typeByteAt?: number;
}

/** a block type LevelDB does not know: it refuses to decode such a block ("bad block type") */
export const UNREADABLE_BLOCK_TYPE = 0xff;

interface BlockHandle {
  readonly offset: number;
  readonly size: number;
}

function readHandle(c: Cursor): BlockHandle {
  return { offset: c.varint(), size: c.varint() };
}

/** A block's contents after its CRC was checked (uncompressed when it was snappy-compressed). */
function readBlock(file: Buffer, h: BlockHandle): Buffer {
  if (h.offset + h.size + BLOCK_TRAILER_SIZE > file.length) throw new FormatError(`block at ${h.offset} runs past the end of the file`);
  const stored = file.subarray(h.offset, h.offset + h.size);
  const type = file[h.offset + h.size]!;
  const expected = file.readUInt32LE(h.offset + h.size + 1);
  if (maskedCrc(file.subarray(h.offset, h.offset + h.size + 1)) !== expected) throw new FormatError(`block at ${h.offset}: checksum mismatch`);
  if (type === NO_COMPRESSION) return stored;
  if (type === SNAPPY_COMPRESSION) return snappyUncompress(stored);
  throw new FormatError(`block at ${h.offset}: unknown compression type ${type}`);
}

/** The values of a block's entries (keys are prefix-compressed and not needed here). */
function blockValues(block: Buffer): Buffer[] {
  if (block.length < 4) throw new FormatError('block too short');
  const restarts = block.readUInt32LE(block.length - 4);
  const dataEnd = block.length - 4 - 4 * restarts;
  if (restarts === 0 || dataEnd < 0) throw new FormatError('bad restart array');
  const c = new Cursor(block, 0, dataEnd);
  const values: Buffer[] = [];
  while (!c.done) {
    c.varint(); // shared key bytes
    const unshared = c.varint();
    const valueLength = c.varint();
    c.bytes(unshared);
    values.push(c.bytes(valueLength));
  }
  return values;
}

/**
 * Checks every block of a table file against its CRC (what `verify_checksums` would do on
 * each read): the footer, the index and metaindex blocks, each data block the index names
 * and the filter blocks. Returns the problems found, empty when the file is sound.
 */
export function verifyTable(file: Buffer): TableProblem[] {
  if (file.length < TABLE_FOOTER_SIZE) return [{ offset: 0, reason: `file too short for a table (${file.length} bytes)` }];
  const footerAt = file.length - TABLE_FOOTER_SIZE;
  if (file.readUInt32LE(file.length - 8) !== TABLE_MAGIC_LO || file.readUInt32LE(file.length - 4) !== TABLE_MAGIC_HI) {
    return [{ offset: footerAt, reason: 'bad magic number in the footer (not a table, or cut short)' }];
  }
  const problems: TableProblem[] = [];
  let index: Buffer;
  let metaindexHandle: BlockHandle;
  try {
    const c = new Cursor(file, footerAt, file.length - 8);
    metaindexHandle = readHandle(c);
    index = readBlock(file, readHandle(c));
  } catch (e) {
    return [{ offset: footerAt, reason: `index block: ${(e as Error).message}` }];
  }
  const handles: BlockHandle[] = [];
  try {
    for (const v of blockValues(index)) handles.push(readHandle(new Cursor(v, 0, v.length)));
  } catch (e) {
    problems.push({ offset: footerAt, reason: `index block: ${(e as Error).message}` });
  }
  try {
    const meta = readBlock(file, metaindexHandle);
    for (const v of blockValues(meta)) handles.push(readHandle(new Cursor(v, 0, v.length)));
  } catch (e) {
    problems.push({ offset: metaindexHandle.offset, reason: `metaindex block: ${(e as Error).message}` });
  }
  for (const h of handles) {
    if (h.offset + h.size + BLOCK_TRAILER_SIZE > footerAt) {
      problems.push({ offset: h.offset, reason: `block at ${h.offset} runs into the footer` });
      continue;
    }
    const stored = file.subarray(h.offset, h.offset + h.size + 1);
    if (maskedCrc(stored) !== file.readUInt32LE(h.offset + h.size + 1)) {
      problems.push({ offset: h.offset, reason: `block at ${h.offset}: checksum mismatch`, typeByteAt: h.offset + h.size });
    }
  }
  return problems;
}

// ------------------------------------------------------------------ snappy (index blocks)

/** Snappy's raw format (LevelDB compresses blocks with it); only index blocks need decoding. */
export function snappyUncompress(input: Buffer): Buffer {
  const c = new Cursor(input, 0, input.length);
  const length = c.varint();
  if (length > 64 * 1024 * 1024) throw new FormatError('snappy block claims more than 64 MiB');
  const out = Buffer.allocUnsafe(length);
  let o = 0;
  while (!c.done) {
    const tag = c.bytes(1)[0]!;
    let len: number;
    let offset: number;
    switch (tag & 3) {
      case 0: {
        len = tag >>> 2;
        if (len >= 60) {
          const extra = len - 59;
          const b = c.bytes(extra);
          len = 0;
          for (let i = extra - 1; i >= 0; i--) len = len * 256 + b[i]!;
        }
        len += 1;
        if (o + len > length) throw new FormatError('snappy literal past the declared length');
        c.bytes(len).copy(out, o);
        o += len;
        continue;
      }
      case 1:
        len = 4 + ((tag >>> 2) & 7);
        offset = ((tag >>> 5) << 8) | c.bytes(1)[0]!;
        break;
      case 2:
        len = (tag >>> 2) + 1;
        offset = c.bytes(2).readUInt16LE(0);
        break;
      default:
        len = (tag >>> 2) + 1;
        offset = c.bytes(4).readUInt32LE(0);
    }
    if (offset === 0 || offset > o || o + len > length) throw new FormatError('snappy copy out of range');
    // copies may overlap their own output (a run): byte by byte
    for (let i = 0; i < len; i++) out[o + i] = out[o - offset + i]!;
    o += len;
  }
  if (o !== length) throw new FormatError(`snappy block holds ${o} bytes, declared ${length}`);
  return out;
}
