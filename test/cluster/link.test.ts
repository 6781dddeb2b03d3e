import { describe, expect, it } from 'vitest';
import { FrameDecoder, frame, LinkError } from '../../src/cluster/link.js';

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
