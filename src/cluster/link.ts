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
 */
function handshake<T>(socket: Duplex, decoder: FrameDecoder, onFrame: (type: number, payload: Buffer) => T | null): Promise<{ value: T; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new LinkError('handshake timeout')), HANDSHAKE_TIMEOUT_MS);
    const finish = (err: Error | null, value?: T): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      if (err !== null) reject(err);
      else resolve({ value: value as T, rest: decoder.rest() });
    };
    const onClose = (): void => finish(new LinkError('link closed during the handshake'));
    const onData = (chunk: Buffer): void => {
      try {
        decoder.push(chunk);
        for (let f = decoder.next(); f !== null; f = decoder.next()) {
          const value = onFrame(f.type, f.payload);
          if (value !== null) return finish(null, value);
        }
      } catch (err) {
        finish(err instanceof Error ? err : new LinkError(String(err)));
      }
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onClose);
  });
}

/** Server side: proves the peer knows the secret, then tells it our id and term. */
export async function acceptHandshake(socket: Duplex, secret: Buffer, self: () => { nodeId: string; term: number }): Promise<Authenticated> {
  const nonceS = randomBytes(32);
  socket.write(frame(FrameType.Hello, MAGIC, nonceS));
  const decoder = new FrameDecoder();
  const { value, rest } = await handshake(socket, decoder, (type, payload) => {
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

/** Client side: answers the server's challenge and checks the server's proof. */
export async function connectHandshake(
  socket: Duplex,
  secret: Buffer,
  nodeId: string,
  purpose: PurposeCode,
): Promise<{ nodeId: string; term: number; rest: Buffer }> {
  const nonceC = randomBytes(32);
  const decoder = new FrameDecoder();
  let nonceS: Buffer | null = null;
  const { value, rest } = await handshake(socket, decoder, (type, payload) => {
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
