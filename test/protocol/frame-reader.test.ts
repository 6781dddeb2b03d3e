import { describe, expect, it } from 'vitest';
import { seededRandom } from '../helpers/random.js';
import { AmqpConnectionError } from '../../src/protocol/errors.js';
import { FrameReader, type Frame } from '../../src/protocol/frame-reader.js';
import { encodeBodyFrames, encodeContentHeaderFrame, HEARTBEAT_FRAME } from '../../src/protocol/frame-writer.js';
import { FrameType, PROTOCOL_HEADER } from '../../src/protocol/generated/constants.js';
import { encodeBasicPublishFrame } from '../../src/protocol/generated/methods.js';
import { encodeBasicProperties } from '../../src/protocol/generated/properties.js';
import { ReplyCode } from '../../src/protocol/reply-code.js';

const body = Buffer.from('x'.repeat(50) + 'y'.repeat(50));
const FRAMES: Buffer[] = [
  encodeBasicPublishFrame(1, { exchange: 'amq.direct', routingKey: 'rk', mandatory: true, immediate: false }),
  encodeContentHeaderFrame(1, 60, body.length, encodeBasicProperties({ contentType: 'text/plain', deliveryMode: 2 })),
  ...encodeBodyFrames(1, body, 48), // three body frames of ≤ 40 octets payload
  HEARTBEAT_FRAME,
  encodeBasicPublishFrame(65535, { exchange: '', routingKey: 'q', mandatory: false, immediate: false }),
];
const INPUT = Buffer.concat(FRAMES);
const EXPECTED = FRAMES.map((f) => ({ type: f[0]!, channel: f.readUInt16BE(1), payload: f.subarray(7, f.length - 1) }));

function readAll(reader: FrameReader, chunks: Buffer[]): Frame[] {
  const out: Frame[] = [];
  for (const c of chunks) {
    reader.push(c);
    for (let f = reader.next(); f !== null; f = reader.next()) out.push(f);
  }
  return out;
}

function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    out.push(Buffer.from(buf.subarray(prev, c))); // copies: each chunk its own memory, as from a socket
    prev = c;
  }
  return out;
}

function expectFrames(frames: Frame[]): void {
  expect(frames.map((f) => ({ type: f.type, channel: f.channel, payload: f.payload.toString('hex') }))).toEqual(
    EXPECTED.map((f) => ({ type: f.type, channel: f.channel, payload: f.payload.toString('hex') })),
  );
}

function frameError(fn: () => unknown): AmqpConnectionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AmqpConnectionError);
    expect((err as AmqpConnectionError).replyCode).toBe(ReplyCode.FrameError);
    return err as AmqpConnectionError;
  }
  throw new Error('expected a FRAME_ERROR');
}

describe('FrameReader splitting', () => {
  it('reads the whole input in one chunk', () => {
    const reader = new FrameReader(4096);
    expectFrames(readAll(reader, [INPUT]));
    expect(reader.bufferedBytes).toBe(0);
  });

  it('every 2-way split', () => {
    for (let i = 0; i <= INPUT.length; i++) {
      const reader = new FrameReader(4096);
      expectFrames(readAll(reader, splitAt(INPUT, [i])));
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  it('every 3-way split', () => {
    for (let i = 0; i <= INPUT.length; i++) {
      for (let j = i; j <= INPUT.length; j++) expectFrames(readAll(new FrameReader(4096), splitAt(INPUT, [i, j])));
    }
  });

  it('one byte at a time', () => {
    const reader = new FrameReader(4096);
    const chunks = [...INPUT].map((b) => Buffer.from([b]));
    const frames: Frame[] = [];
    for (const c of chunks) {
      reader.push(c);
      const f = reader.next();
      if (f) frames.push(f);
      expect(reader.next()).toBeNull(); // at most one frame completes per byte
    }
    expectFrames(frames);
    expect(reader.bufferedBytes).toBe(0);
  });

  it('500 random splits', () => {
    const rand = seededRandom(42);
    for (let run = 0; run < 500; run++) {
      const cuts = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => Math.floor(rand() * (INPUT.length + 1))).sort((a, b) => a - b);
      expectFrames(readAll(new FrameReader(4096), splitAt(INPUT, cuts)));
    }
  });

  it('all pushes before any next(), and empty chunks are ignored', () => {
    const reader = new FrameReader(4096);
    for (const c of splitAt(INPUT, [3, 3, 40, 41, 100])) reader.push(c);
    reader.push(Buffer.alloc(0));
    expect(reader.bufferedBytes).toBe(INPUT.length);
    const frames: Frame[] = [];
    for (let f = reader.next(); f !== null; f = reader.next()) frames.push(f);
    expectFrames(frames);
  });

  it('bufferedBytes counts unconsumed bytes', () => {
    const reader = new FrameReader(4096);
    reader.push(INPUT.subarray(0, 10));
    expect(reader.next()).toBeNull();
    expect(reader.bufferedBytes).toBe(3); // header consumed, 3 payload bytes waiting
    reader.push(INPUT.subarray(10));
    expect(reader.next()).not.toBeNull();
    expect(reader.bufferedBytes).toBe(INPUT.length - FRAMES[0]!.length);
  });
});

describe('FrameReader payload aliasing', () => {
  it('a payload inside one chunk is a view of that chunk (zero copy)', () => {
    const chunk = Buffer.from(INPUT);
    const reader = new FrameReader(4096);
    reader.push(chunk);
    const f = reader.next()!;
    expect(f.payload.buffer).toBe(chunk.buffer);
    expect(f.payload.byteOffset).toBe(chunk.byteOffset + 7);
  });

  it('clobber: a payload spanning chunks is a copy, unaffected when the source chunks are overwritten', () => {
    const [a, b] = splitAt(FRAMES[0]!, [12]); // cut inside the payload
    const reader = new FrameReader(4096);
    reader.push(a!);
    expect(reader.next()).toBeNull();
    reader.push(b!);
    const f = reader.next()!;
    const expected = Buffer.from(EXPECTED[0]!.payload);
    a!.fill(0xff);
    b!.fill(0xff);
    expect(f.payload).toEqual(expected);
  });

  it('nextFrame names the payload by buffer and offsets; frameOwned only for a spanning copy', () => {
    const chunk = Buffer.from(FRAMES[0]!);
    const reader = new FrameReader(4096);
    reader.push(chunk);
    expect(reader.nextFrame()).toBe(true);
    expect(reader.frameBuf).toBe(chunk);
    expect([reader.frameType, reader.frameChannel, reader.frameStart, reader.frameEnd]).toEqual([FrameType.Method, 1, 7, chunk.length - 1]);
    expect(reader.frameOwned).toBe(false);
    expect(reader.nextFrame()).toBe(false);

    const [a, b] = splitAt(FRAMES[0]!, [12]);
    reader.push(a!);
    reader.push(b!);
    expect(reader.nextFrame()).toBe(true);
    expect(reader.frameOwned).toBe(true);
    expect([reader.frameStart, reader.frameEnd]).toEqual([0, reader.frameBuf.length]);
    a!.fill(0xff); // the copy does not alias the chunks
    b!.fill(0xff);
    expect(reader.frameBuf.equals(EXPECTED[0]!.payload)).toBe(true);
  });

  it('returned payloads stay valid across later push/next calls', () => {
    const reader = new FrameReader(4096);
    const frames = readAll(reader, splitAt(INPUT, [5, 30, 31, 90]));
    expectFrames(frames);
  });
});

describe('FrameReader errors', () => {
  it('bad frame-end octet → 501 mentioning the frame end marker', () => {
    const bad = Buffer.from(FRAMES[0]!);
    bad[bad.length - 1] = 0x00;
    const reader = new FrameReader(4096);
    reader.push(bad);
    expect(frameError(() => reader.next()).replyText).toMatch(/^type 1, all octets = <<[\d,]+>>: \{invalid_frame_end_marker,0\}$/);
  });

  it('unknown frame type → 501 in rabbit_reader\'s format', () => {
    const bad = Buffer.from(HEARTBEAT_FRAME);
    bad[0] = 4;
    const reader = new FrameReader(4096);
    reader.push(bad);
    expect(frameError(() => reader.next()).replyText).toBe('type 4, all octets = <<>>: unknown_frame');
  });

  it('oversized frame is refused from the header alone, before its payload arrives', () => {
    const reader = new FrameReader(4096);
    reader.push(Buffer.from([1, 0, 1, 0x00, 0x10, 0x00, 0x01])); // size 1 MiB + 1: only the header
    const err = frameError(() => reader.next());
    expect(err.replyText).toBe('type 1, all octets = <<>>: {frame_too_large,1048577,4088}');
  });

  it("applies RabbitMQ's 8-octet fudge: payload = frameMax accepted, frameMax + 1 refused", () => {
    const frame = (size: number): Buffer => {
      const f = Buffer.alloc(size + 8);
      f[0] = FrameType.Body;
      f.writeUInt32BE(size, 3);
      f[size + 7] = 0xce;
      return f;
    };
    const ok = new FrameReader(4096);
    ok.push(frame(4096));
    expect(ok.next()!.payload.length).toBe(4096);
    const tooBig = new FrameReader(4096);
    tooBig.push(frame(4097).subarray(0, 7));
    frameError(() => tooBig.next());
  });

  it('frameMax is writable (lowered after tune-ok) and 0 means no limit', () => {
    const reader = new FrameReader(0);
    const big = encodeBodyFrames(1, Buffer.alloc(200_000, 1), 0)[0]!;
    reader.push(big);
    expect(reader.next()!.payload.length).toBe(200_000);
    reader.frameMax = 4096;
    reader.push(big.subarray(0, 7));
    frameError(() => reader.next());
  });
});

describe('FrameReader protocol header', () => {
  it('returns the 8-octet header once complete, then frames', () => {
    const reader = new FrameReader(4096);
    const input = Buffer.concat([PROTOCOL_HEADER, INPUT]);
    reader.push(input.subarray(0, 3));
    expect(reader.readProtocolHeader()).toBeNull();
    reader.push(input.subarray(3, 10));
    expect(reader.readProtocolHeader()).toEqual(PROTOCOL_HEADER);
    expectFrames(readAll(reader, [input.subarray(10)]));
  });
});

/**
 * Borrowed reads: the socket reads into one buffer reused for every read (of every
 * connection). Frames read from it are handled before release(); release() copies out
 * what is left. Each helper here overwrites the buffer after release(), as the next read would.
 */
describe('FrameReader borrowed reads', () => {
  const shared = Buffer.alloc(4096);

  /** feeds `chunks` through the one shared buffer; frames are copied when read (as a handler keeps what it needs) */
  function readBorrowed(reader: FrameReader, chunks: Buffer[], stopAfter = Infinity): Frame[] {
    const out: Frame[] = [];
    for (const c of chunks) {
      c.copy(shared);
      reader.pushBorrowed(shared, c.length);
      let n = 0;
      while (n < stopAfter && reader.nextFrame()) {
        out.push({ type: reader.frameType, channel: reader.frameChannel, payload: Buffer.from(reader.framePayload()) });
        n++;
      }
      reader.release();
      shared.fill(0xaa); // the next read reuses the buffer
    }
    for (let f = reader.next(); f !== null; f = reader.next()) out.push({ ...f, payload: Buffer.from(f.payload) });
    return out;
  }

  it('every 2-way split: frames intact though the buffer is overwritten after each read', () => {
    for (let i = 1; i < INPUT.length; i++) {
      expect(readBorrowed(new FrameReader(0), splitAt(INPUT, [i]))).toEqual(EXPECTED);
    }
  });

  it('one byte at a time, and 300 random splits', () => {
    expect(readBorrowed(new FrameReader(0), splitAt(INPUT, [...Array(INPUT.length - 1).keys()].map((i) => i + 1)))).toEqual(EXPECTED);
    const rnd = seededRandom(7);
    for (let n = 0; n < 300; n++) {
      const cuts = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => 1 + Math.floor(rnd() * (INPUT.length - 1))))].sort((a, b) => a - b);
      expect(readBorrowed(new FrameReader(0), splitAt(INPUT, cuts))).toEqual(EXPECTED);
    }
  });

  it('frames left unread when handling stops mid-buffer are copied out by release()', () => {
    // one frame handled per read: the rest of each read must survive the buffer's reuse
    const r = new FrameReader(0);
    const out = readBorrowed(r, [INPUT], 1);
    expect(out).toEqual(EXPECTED);
    expect(r.bufferedBytes).toBe(0);
  });

  it('a payload still arriving gets a buffer of its own size, which later reads fill; the frame is owned', () => {
    const big = Buffer.alloc(3000, 7);
    const frames = encodeBodyFrames(3, big, 4096);
    const input = Buffer.concat([...frames, HEARTBEAT_FRAME]);
    const r = new FrameReader(0);
    input.copy(shared, 0, 0, 1000);
    r.pushBorrowed(shared, 1000);
    expect(r.nextFrame()).toBe(false);
    r.release();
    shared.fill(0xaa);
    expect(r.bufferedBytes).toBe(1000 - 7);
    input.copy(shared, 0, 1000);
    r.pushBorrowed(shared, input.length - 1000);
    expect(r.nextFrame()).toBe(true);
    expect(r.frameOwned).toBe(true);
    expect(r.framePayload()).toEqual(big);
    expect(r.nextFrame()).toBe(true);
    expect(r.frameType).toBe(FrameType.Heartbeat);
    r.release();
    expect(r.bufferedBytes).toBe(0);
  });

  it('the rest of a big payload can be read straight into its buffer (fillTarget / filledInPlace)', () => {
    const big = Buffer.from(Array.from({ length: 40_000 }, (_, i) => i & 0xff));
    const input = Buffer.concat([...encodeBodyFrames(5, big, 65536), HEARTBEAT_FRAME]);
    const r = new FrameReader(0);
    expect(r.fillTarget(1)).toBe(null);
    input.copy(shared, 0, 0, 1007); // header and 1,000 octets of the payload
    r.pushBorrowed(shared, 1007);
    expect(r.nextFrame()).toBe(false);
    r.release();
    const target = r.fillTarget(16 * 1024)!;
    expect(target.length).toBe(39_000);
    expect(r.fillTarget(39_001)).toBe(null);
    input.copy(target, 0, 1007, 1007 + 20_000); // a read into the payload's own memory
    r.filledInPlace(20_000);
    expect(r.nextFrame()).toBe(false);
    expect(r.fillTarget(19_001)).toBe(null);
    const wide = Buffer.alloc(65536);
    input.copy(wide, 0, 21_007); // the rest, the end octet and a heartbeat, through the shared buffer
    r.pushBorrowed(wide, input.length - 21_007);
    expect(r.nextFrame()).toBe(true);
    expect(r.frameChannel).toBe(5);
    expect(r.frameOwned).toBe(true);
    expect(r.framePayload()).toEqual(big);
    expect(r.nextFrame()).toBe(true);
    expect(r.frameType).toBe(FrameType.Heartbeat);
    r.release();
    expect(r.bufferedBytes).toBe(0);
  });

  it('a bad frame-end after an in-place payload is still a 501', () => {
    const big = Buffer.alloc(2000, 1);
    const frame = Buffer.from(encodeBodyFrames(1, big, 4096)[0]!);
    frame[frame.length - 1] = 0x00;
    const r = new FrameReader(0);
    frame.copy(shared, 0, 0, 100);
    r.pushBorrowed(shared, 100);
    expect(r.nextFrame()).toBe(false);
    r.release();
    frame.copy(shared, 0, 100);
    r.pushBorrowed(shared, frame.length - 100);
    expect(() => r.nextFrame()).toThrow(AmqpConnectionError);
  });
});
