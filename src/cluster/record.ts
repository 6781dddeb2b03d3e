/**
 * One replicated record: one atomic write of the leader's store, as opaque operations.
 *
 *   record := term u64 | seq u64 | count u32 | op*
 *   op     := 0x01 put | klen u32 | key | vlen u32 | value
 *           | 0x02 del | klen u32 | key
 *
 * `seq` is global and continues across terms; `term` is the leader's election revision.
 * The store's key space is not interpreted here: replication copies bytes.
 */
export type Op = { readonly type: 'put'; readonly key: Buffer; readonly value: Buffer } | { readonly type: 'del'; readonly key: Buffer };

export interface LogRecord {
  readonly term: number;
  readonly seq: number;
  readonly ops: readonly Op[];
}

const OP_PUT = 1;
const OP_DEL = 2;
export const RECORD_HEADER = 20;

export class RecordFormatError extends Error {
  override readonly name = 'RecordFormatError';
}

/** encodes a record into a buffer of its own, or into the one `alloc` gives for its size */
export function encodeRecord(term: number, seq: number, ops: readonly Op[], alloc: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
  let size = RECORD_HEADER;
  for (const op of ops) size += 5 + op.key.length + (op.type === 'put' ? 4 + op.value.length : 0);
  const buf = alloc(size);
  buf.writeBigUInt64BE(BigInt(term), 0);
  buf.writeBigUInt64BE(BigInt(seq), 8);
  buf.writeUInt32BE(ops.length, 16);
  let at = RECORD_HEADER;
  for (const op of ops) {
    buf[at++] = op.type === 'put' ? OP_PUT : OP_DEL;
    buf.writeUInt32BE(op.key.length, at);
    at += 4;
    at += op.key.copy(buf, at);
    if (op.type === 'put') {
      buf.writeUInt32BE(op.value.length, at);
      at += 4;
      at += op.value.copy(buf, at);
    }
  }
  return buf;
}

export function recordTerm(buf: Buffer): number {
  return Number(buf.readBigUInt64BE(0));
}

export function recordSeq(buf: Buffer): number {
  return Number(buf.readBigUInt64BE(8));
}

/** Validates a record as decodeRecord does, without building its ops (the follower's check on receipt). */
export function validateRecord(buf: Buffer): void {
  if (buf.length < RECORD_HEADER) throw new RecordFormatError('record shorter than its header');
  const term = recordTerm(buf);
  const seq = recordSeq(buf);
  if (!Number.isSafeInteger(term) || !Number.isSafeInteger(seq) || seq < 1) throw new RecordFormatError('record term or seq out of range');
  const count = buf.readUInt32BE(16);
  let at = RECORD_HEADER;
  for (let i = 0; i < count; i++) {
    if (at + 5 > buf.length) throw new RecordFormatError('record truncated');
    const type = buf[at];
    at += 5 + buf.readUInt32BE(at + 1);
    if (type === OP_PUT) {
      if (at + 4 > buf.length) throw new RecordFormatError('record truncated');
      at += 4 + buf.readUInt32BE(at);
    } else if (type !== OP_DEL) {
      throw new RecordFormatError(`unknown op type ${type}`);
    }
    if (at > buf.length) throw new RecordFormatError('record truncated');
  }
  if (at !== buf.length) throw new RecordFormatError('trailing bytes after the last op');
}

/**
 * Hands a record's ops to `put` and `del` in order, keys and values as views into `buf`,
 * without building op objects (a follower applying records to its store). The record is
 * validated first, as decodeRecord does: a malformed one throws before any op is handed out.
 */
export function forEachOp(buf: Buffer, put: (key: Buffer, value: Buffer) => void, del: (key: Buffer) => void): void {
  validateRecord(buf);
  const count = buf.readUInt32BE(16);
  let at = RECORD_HEADER;
  for (let i = 0; i < count; i++) {
    const type = buf[at];
    const klen = buf.readUInt32BE(at + 1);
    at += 5;
    const key = buf.subarray(at, at + klen);
    at += klen;
    if (type === OP_PUT) {
      const vlen = buf.readUInt32BE(at);
      at += 4;
      put(key, buf.subarray(at, at + vlen));
      at += vlen;
    } else {
      del(key);
    }
  }
}

/** Decodes and validates a record; keys and values are views into `buf`. */
export function decodeRecord(buf: Buffer): LogRecord {
  if (buf.length < RECORD_HEADER) throw new RecordFormatError('record shorter than its header');
  const term = recordTerm(buf);
  const seq = recordSeq(buf);
  if (!Number.isSafeInteger(term) || !Number.isSafeInteger(seq) || seq < 1) throw new RecordFormatError('record term or seq out of range');
  const count = buf.readUInt32BE(16);
  const ops: Op[] = [];
  let at = RECORD_HEADER;
  const need = (n: number): void => {
    if (at + n > buf.length) throw new RecordFormatError('record truncated');
  };
  for (let i = 0; i < count; i++) {
    need(5);
    const type = buf[at++];
    const klen = buf.readUInt32BE(at);
    at += 4;
    need(klen);
    const key = buf.subarray(at, at + klen);
    at += klen;
    if (type === OP_PUT) {
      need(4);
      const vlen = buf.readUInt32BE(at);
      at += 4;
      need(vlen);
      ops.push({ type: 'put', key, value: buf.subarray(at, at + vlen) });
      at += vlen;
    } else if (type === OP_DEL) {
      ops.push({ type: 'del', key });
    } else {
      throw new RecordFormatError(`unknown op type ${type}`);
    }
  }
  if (at !== buf.length) throw new RecordFormatError('trailing bytes after the last op');
  return { term, seq, ops };
}
