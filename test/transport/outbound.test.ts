import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { OUTBOUND_LIMIT, Outbound, SLAB_SIZE } from '../../src/transport/outbound.js';

/** A socket stand-in that records what was written, in order (and can be destroyed). */
class Sink extends Duplex {
  readonly chunks: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(Buffer.from(chunk)); // a copy: what the peer would have received
    cb();
  }
  override _writev(chunks: { chunk: Buffer }[], cb: () => void): void {
    for (const c of chunks) this.chunks.push(Buffer.from(c.chunk));
    cb();
  }
  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Encodes `bytes` through reserve/commit, as the delivery encoder does. */
function encode(out: Outbound, bytes: Buffer): void {
  const buf = out.reserve(bytes.length);
  const o = out.offset;
  bytes.copy(buf, o);
  out.commit(o + bytes.length);
}

const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));
const flushed = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Outbound (shared encode slab)', () => {
  it('keeps each connection\'s bytes in order when several interleave in the slab', async () => {
    const sockets = [new Sink(), new Sink(), new Sink()];
    const outs = sockets.map((s) => new Outbound(s));
    const expected = sockets.map(() => [] as Buffer[]);
    let n = 0;
    for (let round = 0; round < 2000; round++) {
      const i = (round * 7) % 3;
      const bytes = Buffer.alloc(1 + (round % 300), n++ & 0xff);
      if (round % 97 === 0) outs[i]!.write(bytes); // a buffer written as is, between encoded bytes
      else encode(outs[i]!, bytes);
      expected[i]!.push(bytes);
      if (round % 500 === 0) await nextTick(); // some ticks end in between
    }
    await flushed();
    sockets.forEach((s, i) => expect(s.received.equals(Buffer.concat(expected[i]!))).toBe(true));
    expect(outs.map((o) => o.bytesWritten)).toEqual(expected.map((e) => Buffer.concat(e).length));
  });

  it('writes a reservation larger than the slab, and carries on', async () => {
    const s = new Sink();
    const out = new Outbound(s);
    const small = Buffer.from('head');
    const big = Buffer.alloc(SLAB_SIZE * 2 + 5, 7);
    encode(out, small);
    encode(out, big);
    encode(out, small);
    await flushed();
    expect(s.received.equals(Buffer.concat([small, big, small]))).toBe(true);
  });

  it('bytes already handed to a socket are never overwritten by later reservations', async () => {
    const a = new Sink();
    const out = new Outbound(a);
    const parts: Buffer[] = [];
    for (let i = 0; i < 3 * (SLAB_SIZE / 1000); i++) {
      const bytes = Buffer.alloc(1000, i & 0xff);
      encode(out, bytes);
      parts.push(bytes);
    }
    await flushed();
    expect(a.received.equals(Buffer.concat(parts))).toBe(true);
  });

  it('drops what is encoded for a destroyed socket without disturbing the others', async () => {
    const dead = new Sink();
    const live = new Sink();
    const outDead = new Outbound(dead);
    const outLive = new Outbound(live);
    dead.destroy();
    encode(outDead, Buffer.from('lost'));
    encode(outLive, Buffer.from('kept'));
    encode(outDead, Buffer.from('lost'));
    outDead.write(Buffer.from('lost'));
    encode(outLive, Buffer.from('-too'));
    await flushed();
    expect(live.received.toString()).toBe('kept-too');
  });

  it('after the socket was ended, later writes are dropped instead of raising write-after-end', async () => {
    const s = new Sink();
    const errors: Error[] = [];
    s.on('error', (e: Error) => errors.push(e));
    const out = new Outbound(s);
    encode(out, Buffer.from('last words'));
    out.write(Buffer.from('!'));
    s.end();
    encode(out, Buffer.from('too late'));
    out.write(Buffer.from('too late'));
    await flushed();
    expect(s.received.toString()).toBe('last words!');
    expect(errors).toEqual([]);
  });

  it('turns writable off once the socket holds OUTBOUND_LIMIT bytes, not at its high-water mark', async () => {
    const slow = new (class extends Sink {
      override _write(_c: Buffer, _e: BufferEncoding, _cb: () => void): void {} // never completes
      override _writev(_c: { chunk: Buffer }[], _cb: () => void): void {}
    })({ writableHighWaterMark: 1024 });
    const out = new Outbound(slow);
    let written = 0;
    for (let i = 0; i < 2000 && out.writable; i++) {
      encode(out, Buffer.alloc(1000));
      written += 1000;
    }
    await nextTick();
    expect(out.writable).toBe(false);
    // far past the 1 KiB high-water mark, and stopped soon after the limit
    expect(written).toBeGreaterThanOrEqual(OUTBOUND_LIMIT - 64 * 1024);
    expect(written).toBeLessThan(OUTBOUND_LIMIT + 64 * 1024);
  });
});
