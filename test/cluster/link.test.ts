import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameReader, frame, LinkError } from '../../src/cluster/link.js';

describe('FrameDecoder', () => {
  it('gives back every frame, whatever the chunk boundaries, each frame spanning chunks in a buffer of its own', () => {
    const payloads = [Buffer.alloc(0), Buffer.from('a'), Buffer.alloc(70_000, 1), Buffer.from('hello'), Buffer.alloc(9_000, 2), Buffer.alloc(3, 3)];
    const stream = Buffer.concat(payloads.map((p, i) => frame(i + 1, p)));
    for (const size of [1, 2, 3, 5, 7, 4096, 65_536, stream.length]) {
      const d = new FrameDecoder();
      d.maxFrame = 1 << 20;
      const got: { type: number; payload: Buffer }[] = [];
      for (let at = 0; at < stream.length; at += size) {
        d.push(stream.subarray(at, at + size));
        for (let f = d.next(); f !== null; f = d.next()) got.push(f);
      }
      expect(got.map((f) => f.type)).toEqual(payloads.map((_, i) => i + 1));
      got.forEach((f, i) => expect(f.payload.equals(payloads[i]!)).toBe(true));
      // a large frame assembled from chunks does not keep the bytes after it alive
      const big = got[2]!.payload;
      if (size < big.length) expect(big.buffer.byteLength).toBe(big.length + 5);
      expect(d.rest().length).toBe(0);
    }
  });

  it('keeps the bytes after the last frame for rest()', () => {
    const d = new FrameDecoder();
    const f = frame(9, Buffer.from('xy'));
    d.push(Buffer.concat([f.subarray(0, 3)]));
    d.push(Buffer.concat([f.subarray(3), Buffer.from('tail')]));
    expect(d.next()?.payload.toString()).toBe('xy');
    expect(d.next()).toBeNull();
    expect(d.rest().toString()).toBe('tail');
  });

  it('refuses a frame longer than maxFrame before buffering it', () => {
    const d = new FrameDecoder();
    d.maxFrame = 10;
    d.push(frame(1, Buffer.alloc(11)).subarray(0, 6));
    expect(() => d.next()).toThrow(LinkError);
  });
});

describe('FrameReader', () => {
  const payloads = [Buffer.alloc(0), Buffer.from('a'), Buffer.alloc(70_000, 1), Buffer.from('hello'), Buffer.alloc(9_000, 2), Buffer.alloc(3, 3), Buffer.alloc(300_000, 4)];
  const stream = Buffer.concat(payloads.map((p, i) => frame(i + 1, p)));

  const check = (got: { type: number; payload: Buffer }[]): void => {
    expect(got.map((f) => f.type)).toEqual(payloads.map((_, i) => i + 1));
    got.forEach((f, i) => {
      expect(f.payload.equals(payloads[i]!)).toBe(true);
      // a large payload is a buffer of its own size: nothing else kept alive, and never reused
      if (f.payload.length > 4096) expect(f.payload.buffer.byteLength).toBe(f.payload.length);
    });
  };

  it('reads into its own buffers: every frame whole and in order, whatever each read returns', () => {
    for (const size of [1, 2, 3, 5, 7, 4096, 20_000, 65_536, stream.length]) {
      const r = new FrameReader(64 * 1024);
      r.maxFrame = 1 << 20;
      const got: { type: number; payload: Buffer }[] = [];
      r.setHandler((type, payload) => got.push({ type, payload: payload }));
      for (let at = 0; at < stream.length; ) {
        // a read returns at most `size` bytes, and at most what the target holds
        const t = r.target();
        const k = stream.copy(t, 0, at, Math.min(stream.length, at + size, at + t.length));
        at += k;
        r.filled(k);
      }
      check(got);
    }
  });

  it('takes chunks pushed from data events as well', () => {
    for (const size of [1, 3, 5, 65_536, stream.length]) {
      const r = new FrameReader(64 * 1024);
      r.maxFrame = 1 << 20;
      const got: { type: number; payload: Buffer }[] = [];
      r.setHandler((type, payload) => got.push({ type, payload }));
      for (let at = 0; at < stream.length; at += size) r.push(stream.subarray(at, at + size));
      check(got);
    }
  });

  it('holds frames while no handler is set and hands them over in order', () => {
    const r = new FrameReader();
    const first: number[] = [];
    r.setHandler((type) => {
      first.push(type);
      r.setHandler(null);
    });
    r.push(Buffer.concat([frame(1, Buffer.from('x')), frame(2, Buffer.from('y')), frame(3, Buffer.from('z'))]));
    expect(first).toEqual([1]);
    const later: string[] = [];
    r.setHandler((type, payload) => later.push(`${type}${payload.toString()}`));
    expect(later).toEqual(['2y', '3z']);
  });

  it('refuses a frame longer than maxFrame before buffering it', () => {
    const r = new FrameReader();
    r.maxFrame = 10;
    r.setHandler(() => {});
    expect(() => r.push(frame(1, Buffer.alloc(11)).subarray(0, 6))).toThrow(LinkError);
  });
});
