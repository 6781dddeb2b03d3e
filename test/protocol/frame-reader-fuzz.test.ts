import { describe, expect, it } from 'vitest';
import { seededRandom } from '../helpers/random.js';
import { FrameReader } from '../../src/protocol/frame-reader.js';

// The reader driven as the connection drives it over borrowed reads: reads of random
// sizes through one reused buffer (a small head, the whole buffer, or straight into a
// payload's own buffer when it offers one), handling that stops after a random number of
// frames (flow control) and resumes before the next read, and the buffer overwritten after
// every release(). Every frame must come out once, whole and in order.
describe('FrameReader borrowed reads, randomised', () => {
  it('300 streams of small and big frames come out in order and intact', () => {
    const rnd = seededRandom(42);
    for (let round = 0; round < 300; round++) {
      const frames: Buffer[] = [];
      const payloads: Buffer[] = [];
      const n = 5 + Math.floor(rnd() * 40);
      for (let i = 0; i < n; i++) {
        const big = rnd() < 0.4;
        const size = big ? 16_000 + Math.floor(rnd() * 120_000) : Math.floor(rnd() * 300);
        const payload = Buffer.allocUnsafe(size);
        for (let k = 0; k < size; k++) payload[k] = (i * 131 + k * 7 + round) & 0xff;
        payloads.push(payload);
        const f = Buffer.allocUnsafe(size + 8);
        f[0] = 3;
        f.writeUInt16BE(1 + (i % 3), 1);
        f.writeUInt32BE(size, 3);
        payload.copy(f, 7);
        f[size + 7] = 0xce;
        frames.push(f);
      }
      const input = Buffer.concat(frames);
      const shared = Buffer.alloc(256 * 1024);
      const r = new FrameReader(0);
      const got: Buffer[] = [];
      let pos = 0;
      let paused = false;
      const handle = (): void => {
        // stop after a random number of frames, as flow control does
        let budget = rnd() < 0.3 ? Math.floor(rnd() * 3) : Infinity;
        while (budget > 0 && r.nextFrame()) {
          got.push(Buffer.from(r.framePayload()));
          budget--;
        }
        paused = budget === 0;
      };
      let guard = 0;
      while ((pos < input.length || paused) && guard++ < 100_000) {
        if (paused) {
          // resumed: the frames held back are handled before anything more is read
          handle();
          continue;
        }
        const own = r.fillTarget(16 * 1024);
        if (own !== null && rnd() < 0.8) {
          const len = Math.min(own.length, input.length - pos, 1 + Math.floor(rnd() * own.length));
          input.copy(own, 0, pos, pos + len);
          pos += len;
          r.filledInPlace(len);
          handle();
          continue;
        }
        const room = rnd() < 0.3 ? 8 * 1024 : shared.length;
        const len = Math.min(room, input.length - pos, 1 + Math.floor(rnd() * room));
        input.copy(shared, 0, pos, pos + len);
        pos += len;
        r.pushBorrowed(shared, len);
        handle();
        r.release();
        shared.fill(0x55);
      }
      expect(got.length).toBe(payloads.length);
      for (let i = 0; i < payloads.length; i++) expect(got[i]!.equals(payloads[i]!)).toBe(true);
    }
  });
});
