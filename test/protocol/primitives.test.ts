import { isUtf8 as nodeIsUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { isUtf8 } from '../../src/protocol/primitives.js';
import { seededRandom } from '../helpers/random.js';

describe('isUtf8', () => {
  const check = (b: Buffer): boolean => isUtf8(b, 0, b.length);

  it('agrees with Node (simdutf) on every one- and two-byte sequence', () => {
    for (let a = 0; a < 256; a++) {
      expect(check(Buffer.from([a])), `${a}`).toBe(nodeIsUtf8(Buffer.from([a])));
      for (let b = 0; b < 256; b++) {
        const buf = Buffer.from([a, b]);
        if (check(buf) !== nodeIsUtf8(buf)) throw new Error(`disagree on ${buf.toString('hex')}`);
      }
    }
  });

  it('agrees with Node on every three-byte sequence led by E0–F4, and on random strings', () => {
    for (let a = 0xe0; a <= 0xf4; a++) {
      for (let b = 0x70; b < 0xd0; b++) {
        for (let c = 0x70; c < 0xd0; c += 3) {
          const three = Buffer.from([a, b, c]);
          const four = Buffer.from([a, b, c, 0x80]);
          if (check(three) !== nodeIsUtf8(three) || check(four) !== nodeIsUtf8(four)) throw new Error(`disagree on ${four.toString('hex')}`);
        }
      }
    }
    const r = seededRandom(3);
    for (let i = 0; i < 50000; i++) {
      const buf = Buffer.alloc(1 + Math.floor(r() * 12));
      // mostly high bytes, so that multi-byte forms are common
      for (let j = 0; j < buf.length; j++) buf[j] = r() < 0.3 ? Math.floor(r() * 128) : 0x80 + Math.floor(r() * 128);
      if (check(buf) !== nodeIsUtf8(buf)) throw new Error(`disagree on ${buf.toString('hex')}`);
    }
  });

  it('looks only at the given range', () => {
    const buf = Buffer.from([0xff, 0x61, 0xc3, 0xa9, 0xff]);
    expect(isUtf8(buf, 1, 4)).toBe(true);
    expect(isUtf8(buf, 1, 3)).toBe(false); // é cut short
    expect(isUtf8(buf, 0, 2)).toBe(false);
  });
});
