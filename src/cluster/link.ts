import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';

/**
 * The cluster link: length-prefixed frames over TCP (or TLS), opened by an authenticated
 * handshake with the cluster's shared secret (kept in etcd):
 *
 *   server → HELLO   magic "WRN1" | nonceS(32)
 *   client → AUTH    nonceC(32) | mac(32) | purpose u8 | nodeId
 *                    mac = HMAC-SHA256(secret, "client" | nonceS | nonceC | purpose | nodeId)
 *   server → WELCOME mac(32) | JSON {nodeId, term}
 *                    mac = HMAC-SHA256(secret, "server" | nonceC | nonceS)
 *
 * Both sides prove knowledge of the secret without sending it; fresh nonces prevent
 * replay. Before authentication frames are limited to 1 KiB; any malformed or unexpected
 * frame closes the socket, never more.
 *
 * frame := length u32 (of type + payload) | type u8 | payload
 */
export const FrameType = {
  Hello: 0x01,
  Auth: 0x02,
  Welcome: 0x03,
  /** follower → leader: where its store and log stand (JSON) */
  Follow: 0x10,
  /** leader → follower: streaming starts at this seq (u64) */
  StreamFrom: 0x11,
  /** leader → follower: commitSeq u64 | record */
  Record: 0x12,
  /** leader → follower: commitSeq u64 (heartbeat) */
  Commit: 0x13,
  /** follower → leader: seq u64, highest record durably in its log and matching the leader's */
  Ack: 0x14,
  /** leader → follower: seq u64 | term u64 of the state that follows */
  SnapshotBegin: 0x15,
  /** leader → follower: (klen u32 | key | vlen u32 | value)* */
  SnapshotChunk: 0x16,
  SnapshotEnd: 0x17,
} as const;

export const Purpose = { Replicate: 1, Proxy: 2 } as const;
export type PurposeCode = (typeof Purpose)[keyof typeof Purpose];

const MAGIC = Buffer.from('WRN1', 'latin1');
export const PRE_AUTH_MAX = 1024;
/** a record holds one store batch: bodies up to 128 MiB each, so allow a large frame */
export const FRAME_MAX = 1024 * 1024 * 1024;
export const HANDSHAKE_TIMEOUT_MS = 5000;

export class LinkError extends Error {
  override readonly name = 'LinkError';
}

export function frame(type: number, ...parts: Buffer[]): Buffer {
  let len = 1;
  for (const p of parts) len += p.length;
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(len, 0);
  head[4] = type;
  return Buffer.concat([head, ...parts], 4 + len);
}

/** the head of a frame whose payload is a u64 followed by `payloadLength - 8` bytes sent apart */
export function frameHead(type: number, payloadLength: number, first: number): Buffer {
  const head = Buffer.allocUnsafe(13);
  head.writeUInt32BE(1 + payloadLength, 0);
  head[4] = type;
  head.writeBigUInt64BE(BigInt(first), 5);
  return head;
}

export function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n), 0);
  return b;
}

export function readU64(buf: Buffer, at: number): number {
  if (buf.length < at + 8) throw new LinkError('frame too short');
  const n = Number(buf.readBigUInt64BE(at));
  if (!Number.isSafeInteger(n)) throw new LinkError('u64 out of range');
  return n;
}

/** Splits a byte stream into frames without concatenating more than one frame's bytes. */
export class FrameDecoder {
  /** unread chunks are chunks[head..]; the consumed front is dropped in bulk (shift() on a large array is O(n)) */
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  maxFrame = PRE_AUTH_MAX;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** the next complete frame, or null; throws LinkError on an oversized frame */
  next(): { type: number; payload: Buffer } | null {
    if (this.buffered < 5) return null;
    const head = this.peek(5);
    const len = head.readUInt32BE(0);
    if (len < 1 || len > this.maxFrame) throw new LinkError(`frame of ${len} bytes refused`);
    if (this.buffered < 4 + len) return null;
    const all = this.take(4 + len);
    return { type: all[4]!, payload: all.subarray(5) };
  }

  /** bytes received after the last frame (the proxied stream after the handshake) */
  rest(): Buffer {
    const left = this.chunks.length - this.head;
    const out = left === 1 ? this.chunks[this.head]! : Buffer.concat(this.chunks.slice(this.head), this.buffered);
    this.chunks = [];
    this.head = 0;
    this.buffered = 0;
    return out;
  }

  /** the first n bytes (n <= buffered), copying only when they span chunks */
  private peek(n: number): Buffer {
    const first = this.chunks[this.head]!;
    if (first.length >= n) return first;
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    for (let i = this.head; at < n; i++) at += this.chunks[i]!.copy(out, at, 0, Math.min(this.chunks[i]!.length, n - at));
    return out;
  }

  /**
   * the next n bytes (n <= buffered). A frame spanning chunks is copied once into a buffer of
   * its own size; what follows it stays a view of its chunk (never copied again with the next frame)
   */
  private take(n: number): Buffer {
    const first = this.chunks[this.head]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.head++;
      else this.chunks[this.head] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[this.head]!;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.head++;
        else this.chunks[this.head] = c.subarray(k);
      }
    }
    this.buffered -= n;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 64 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    return out;
  }
}

/** a frame's length prefix and type */
const FRAME_HEAD = 5;
/** the rest of a frame body at least this long is read straight into its own buffer */
const DIRECT_READ_MIN = 16 * 1024;
export const LINK_READ_SIZE = 256 * 1024;

/**
 * Splits a link's byte stream into frames as they are read, each frame's payload in a buffer
 * of its own and of its own size, copied once at most: reads go into one buffer the reader
 * keeps (net.Socket's `onread`: `target()` before each read, `filled(n)` after it), and the
 * rest of a large frame is read straight into its payload's buffer. Node's 'data' events
 * allocate a 64 KiB buffer per read; on a replication link, those and the frames assembled
 * from them were two fresh ArrayBuffers per byte received, and V8 starts a full collection
 * for every 64 MiB of ArrayBuffer memory allocated. Chunks from 'data' events (TLS) go
 * through `push`, copied into the same buffers.
 *
 * Frames go to the handler set with `setHandler`; while none is set they are held, in
 * order, and handed to the next one (the frames after a handshake, in the same read).
 * An oversized frame throws LinkError from `filled`/`push` before anything is buffered for it.
 */
export class FrameReader {
  maxFrame = PRE_AUTH_MAX;
  private readonly scratch: Buffer;
  /** bytes of an incomplete frame head kept at the start of scratch */
  private headBytes = 0;
  /** the payload being filled, and how much of it is */
  private body: Buffer | null = null;
  private bodyType = 0;
  private bodyAt = 0;
  /** the buffer target() gave last */
  private lent: Buffer | null = null;
  private handler: ((type: number, payload: Buffer) => void) | null = null;
  private held: { type: number; payload: Buffer }[] = [];

  constructor(readSize = LINK_READ_SIZE) {
    this.scratch = Buffer.allocUnsafeSlow(Math.max(readSize, 64));
  }

  /** frames go to `handler` from now on, the held ones first (null: hold them) */
  setHandler(handler: ((type: number, payload: Buffer) => void) | null): void {
    this.handler = handler;
    while (this.handler === handler && handler !== null && this.held.length > 0) {
      const f = this.held.shift()!;
      handler(f.type, f.payload);
    }
  }

  /** where the next read goes */
  target(): Buffer {
    const body = this.body;
    this.lent = body !== null && body.length - this.bodyAt >= DIRECT_READ_MIN ? body.subarray(this.bodyAt) : this.scratch.subarray(this.headBytes);
    return this.lent;
  }

  /** n bytes were read into the buffer target() gave */
  filled(n: number): void {
    const lent = this.lent;
    this.lent = null;
    if (lent === null || n <= 0) return;
    if (lent.buffer !== this.scratch.buffer) {
      this.bodyAt += n;
      if (this.bodyAt === this.body!.length) this.finishBody();
      return;
    }
    this.consume(this.scratch, 0, this.headBytes + n);
  }

  /** a chunk of the stream from elsewhere ('data' events), copied into the frames' buffers */
  push(chunk: Buffer): void {
    for (let at = 0; at < chunk.length; ) {
      const t = this.target();
      const k = chunk.copy(t, 0, at, Math.min(chunk.length, at + t.length));
      at += k;
      this.filled(k);
    }
  }

  /** frames from buf[at, end): whole ones out, a started one into its body, a partial head kept */
  private consume(buf: Buffer, at: number, end: number): void {
    this.headBytes = 0;
    if (this.body !== null) {
      const k = Math.min(end - at, this.body.length - this.bodyAt);
      buf.copy(this.body, this.bodyAt, at, at + k);
      this.bodyAt += k;
      at += k;
      if (this.bodyAt < this.body.length) return;
      this.finishBody();
    }
    while (end - at >= FRAME_HEAD) {
      const len = buf.readUInt32BE(at);
      if (len < 1 || len > this.maxFrame) throw new LinkError(`frame of ${len} bytes refused`);
      const type = buf[at + 4]!;
      at += FRAME_HEAD;
      const size = len - 1;
      // a payload's own buffer: a large one its own ArrayBuffer, a small one a slice of Node's pool
      const payload = size > 4096 ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
      const k = Math.min(size, end - at);
      buf.copy(payload, 0, at, at + k);
      at += k;
      if (k < size) {
        this.body = payload;
        this.bodyType = type;
        this.bodyAt = k;
        return;
      }
      this.deliver(type, payload);
    }
    // fewer bytes than a frame head: kept for the next read, which lands right after them
    if (end > at) buf.copy(this.scratch, 0, at, end);
    this.headBytes = end - at;
  }

  private finishBody(): void {
    const payload = this.body!;
    this.body = null;
    this.bodyAt = 0;
    this.deliver(this.bodyType, payload);
  }

  private deliver(type: number, payload: Buffer): void {
    if (this.handler !== null && this.held.length === 0) this.handler(type, payload);
    else this.held.push({ type, payload });
  }
}

/** what a dialer may do with a link's reads: straight into a FrameReader when it can */
export interface LinkReads {
  readonly reader: FrameReader;
  /** set by a dialer that reads into the reader (otherwise the caller feeds it 'data' chunks) */
  attached: boolean;
}

function mac(secret: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface Authenticated {
  readonly nodeId: string;
  readonly purpose: PurposeCode;
  /** bytes that followed the handshake in the same reads */
  readonly rest: Buffer;
}

/**
 * Runs a handshake step by step on one socket: `onFrame` returns true once done. Resolves
 * with what the frames returned; rejects (and the caller destroys the socket) on any error.
 * Frames come from the socket's 'data' events, or from `reader` (which its owner feeds):
 * then the frames after the handshake stay held in it, and `rest` is empty.
 */
function handshake<T>(
  socket: Duplex,
  reader: FrameReader | null,
  onFrame: (type: number, payload: Buffer) => T | null,
): Promise<{ value: T; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const decoder = reader === null ? new FrameDecoder() : null;
    let done = false;
    const timer = setTimeout(() => finish(new LinkError('handshake timeout')), HANDSHAKE_TIMEOUT_MS);
    const finish = (err: Error | null, value?: T): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reader?.setHandler(null);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      if (err !== null) reject(err);
      else resolve({ value: value as T, rest: decoder?.rest() ?? Buffer.alloc(0) });
    };
    const onClose = (): void => finish(new LinkError('link closed during the handshake'));
    const handle = (type: number, payload: Buffer): void => {
      if (done) return;
      try {
        const value = onFrame(type, payload);
        if (value !== null) finish(null, value);
      } catch (err) {
        finish(err instanceof Error ? err : new LinkError(String(err)));
      }
    };
    const onData = (chunk: Buffer): void => {
      if (decoder === null) return;
      try {
        decoder.push(chunk);
        for (let f = decoder.next(); f !== null && !done; f = decoder.next()) handle(f.type, f.payload);
      } catch (err) {
        finish(err instanceof Error ? err : new LinkError(String(err)));
      }
    };
    if (reader !== null) {
      reader.maxFrame = PRE_AUTH_MAX;
      reader.setHandler(handle);
    } else {
      socket.on('data', onData);
    }
    socket.on('close', onClose);
    socket.on('error', onClose);
  });
}

/** Server side: proves the peer knows the secret, then tells it our id and term. */
export async function acceptHandshake(socket: Duplex, secret: Buffer, self: () => { nodeId: string; term: number }): Promise<Authenticated> {
  const nonceS = randomBytes(32);
  socket.write(frame(FrameType.Hello, MAGIC, nonceS));
  const { value, rest } = await handshake(socket, null, (type, payload) => {
    if (type !== FrameType.Auth || payload.length < 66 || payload.length > 64 + 1 + 255) throw new LinkError('expected an AUTH frame');
    const nonceC = payload.subarray(0, 32);
    const theirMac = payload.subarray(32, 64);
    const purposeAndId = payload.subarray(64);
    const purpose = purposeAndId[0]!;
    if (purpose !== Purpose.Replicate && purpose !== Purpose.Proxy) throw new LinkError('unknown purpose');
    if (!equal(theirMac, mac(secret, Buffer.from('client'), nonceS, nonceC, purposeAndId))) throw new LinkError('authentication failed');
    const nodeId = purposeAndId.subarray(1).toString('utf8');
    const me = self();
    socket.write(frame(FrameType.Welcome, mac(secret, Buffer.from('server'), nonceC, nonceS), Buffer.from(JSON.stringify(me))));
    return { nodeId, purpose: purpose as PurposeCode };
  });
  return { ...value, rest };
}

/**
 * Client side: answers the server's challenge and checks the server's proof. With a
 * `reader` (fed by its owner: see FrameReader), the frames after the handshake stay held
 * in it for the next handler, and `rest` is empty.
 */
export async function connectHandshake(
  socket: Duplex,
  secret: Buffer,
  nodeId: string,
  purpose: PurposeCode,
  reader: FrameReader | null = null,
): Promise<{ nodeId: string; term: number; rest: Buffer }> {
  const nonceC = randomBytes(32);
  let nonceS: Buffer | null = null;
  const { value, rest } = await handshake(socket, reader, (type, payload) => {
    if (nonceS === null) {
      if (type !== FrameType.Hello || payload.length !== 36 || !payload.subarray(0, 4).equals(MAGIC)) throw new LinkError('not a Warren cluster port');
      nonceS = Buffer.from(payload.subarray(4));
      const purposeAndId = Buffer.concat([Buffer.from([purpose]), Buffer.from(nodeId, 'utf8')]);
      socket.write(frame(FrameType.Auth, nonceC, mac(secret, Buffer.from('client'), nonceS, nonceC, purposeAndId), purposeAndId));
      return null;
    }
    if (type !== FrameType.Welcome || payload.length < 32) throw new LinkError('expected a WELCOME frame');
    if (!equal(payload.subarray(0, 32), mac(secret, Buffer.from('server'), nonceC, nonceS))) throw new LinkError('the peer does not know the cluster secret');
    const me = JSON.parse(payload.subarray(32).toString('utf8')) as { nodeId?: unknown; term?: unknown };
    if (typeof me.nodeId !== 'string' || typeof me.term !== 'number') throw new LinkError('malformed WELCOME');
    return { nodeId: me.nodeId, term: me.term };
  });
  return { ...value, rest };
}
