/**
 * Incremental AMQP frame reader over socket chunks (spec 4.2.3):
 *
 *   type u8 | channel u16 | size u32 | payload (size octets) | frame-end 0xCE
 *
 * Chunks are kept in a list with a byte count and never concatenated. The
 * 7-octet header may span chunks. The payload size is checked against frameMax
 * from the header alone, BEFORE waiting for (and buffering) the payload.
 *
 * Payload aliasing: a payload that lies inside one chunk is left in that chunk
 * (zero copy; node never reuses a socket chunk after emitting it) and named by
 * buffer + offsets, so reading a frame allocates nothing. A payload that spans
 * chunks is copied exactly once into a fresh Buffer.allocUnsafe. Either way the
 * payload stays valid after later push()/nextFrame() calls.
 *
 * Borrowed reads (pushBorrowed/release): the socket reads into one buffer that is reused
 * for the next read, so nothing may stay in it. Frames read from it are views valid until
 * release(), which the caller invokes once it has handled them: release() copies what is
 * left. A payload that is still arriving gets a buffer of its exact size, filled in
 * place by the reads that follow (one copy, one allocation, however many reads it spans).
 */
import { AmqpConnectionError } from './errors.js';
import { FRAME_END, FRAME_HEADER_SIZE, FrameType } from './generated/constants.js';
import { ReplyCode } from './reply-code.js';

export interface Frame {
  type: number;
  channel: number;
  payload: Buffer;
}

/** header (7) + frame-end (1): what a frame costs beyond its payload. */
export const EMPTY_FRAME_SIZE = 8;

/**
 * RabbitMQ: "We allow clients to exceed the frame size a little bit since quite a
 * few get it wrong - off-by 1 or 8 (empty frame size) are typical"
 * (rabbit_reader FRAME_SIZE_FUDGE = EMPTY_FRAME_SIZE): a payload is refused only
 * when it exceeds frameMax - 8 + 8.
 */
export const FRAME_SIZE_FUDGE = EMPTY_FRAME_SIZE;

const PROTOCOL_HEADER_SIZE = 8;
const EMPTY = Buffer.alloc(0);
const NO_HEADER = -1;

export class FrameReader {
  /** Negotiated frame-max (whole frame incl. 8 octets of envelope); 0 = no limit (spec: tune). */
  frameMax: number;

  private chunks: Buffer[] = [];
  /** index of the first unconsumed chunk in `chunks` */
  private head = 0;
  /** read position inside chunks[head] */
  private pos = 0;
  private total = 0;

  // header of the frame whose payload is awaited (size === NO_HEADER: none)
  private type = 0;
  private channel = 0;
  private size = NO_HEADER;
  /** the awaited payload, being filled in place (borrowed reads), and how much of it is in */
  private fill: Buffer | null = null;
  private fillPos = 0;

  constructor(frameMax: number) {
    this.frameMax = frameMax;
  }

  /** Unconsumed bytes held (including a parsed-but-incomplete frame's payload bytes). */
  get bufferedBytes(): number {
    return this.total + this.fillPos;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const fill = this.fill;
    if (fill !== null && this.fillPos < fill.length) {
      const take = Math.min(fill.length - this.fillPos, chunk.length);
      chunk.copy(fill, this.fillPos, 0, take);
      this.fillPos += take;
      if (take === chunk.length) return;
      chunk = chunk.subarray(take);
    }
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /**
   * Bytes in a buffer the caller will reuse: frames read until release() may be views of
   * it (frameOwned false); release() must be called before the buffer is written again.
   */
  pushBorrowed(buf: Buffer, length: number): void {
    this.push(length === buf.length ? buf : buf.subarray(0, length));
  }

  /**
   * Where the next read may go straight: the rest of a payload being filled in place,
   * when at least `min` octets of it are missing (null otherwise). After such a read,
   * call filledInPlace with its length.
   */
  fillTarget(min: number): Buffer | null {
    const fill = this.fill;
    if (fill === null || fill.length - this.fillPos < min) return null;
    return fill.subarray(this.fillPos);
  }

  /** n octets were read straight into fillTarget()'s buffer. */
  filledInPlace(n: number): void {
    this.fillPos += n;
  }

  /**
   * The borrowed buffer is about to be reused: copy out every byte not consumed yet. A
   * payload still arriving is copied into a buffer of its own size, which later pushes
   * fill; anything else left (part of a header, or frames not read because reading
   * paused) into one fresh buffer.
   */
  release(): void {
    if (this.total === 0) return;
    if (this.size !== NO_HEADER && this.fill === null && this.total < this.size + 1) {
      const fill = Buffer.allocUnsafe(this.size);
      const n = Math.min(this.total, this.size);
      this.copyOut(fill, n);
      this.fill = fill;
      this.fillPos = n;
      if (this.total === 0) return;
    }
    const rest = Buffer.allocUnsafe(this.total);
    this.copyOut(rest, this.total);
    this.chunks.push(rest);
    this.total = rest.length;
  }

  /** The 8-octet protocol header ("AMQP" 0 0 9 1) once available; call once, before next(). */
  readProtocolHeader(): Buffer | null {
    if (this.total < PROTOCOL_HEADER_SIZE) return null;
    const out = Buffer.allocUnsafe(PROTOCOL_HEADER_SIZE);
    this.copyOut(out, PROTOCOL_HEADER_SIZE);
    return out;
  }

  // The frame last read by nextFrame(): its payload is frameBuf[frameStart, frameEnd).
  // frameBuf is a socket chunk (never reused by node) or, for a payload that spanned
  // chunks, a fresh copy; either way it stays valid after later push()/nextFrame() calls.
  frameType = 0;
  frameChannel = 0;
  frameBuf: Buffer = EMPTY;
  frameStart = 0;
  frameEnd = 0;
  /**
   * frameBuf is a fresh copy holding exactly this payload (it spanned chunks): nothing
   * else references it, so a handler may keep it instead of copying it again.
   */
  frameOwned = false;

  /**
   * The next complete frame, or null when more bytes are needed. Allocates a Frame and a
   * payload view; the connection's hot path uses nextFrame() instead.
   */
  next(): Frame | null {
    if (!this.nextFrame()) return null;
    return { type: this.frameType, channel: this.frameChannel, payload: this.framePayload() };
  }

  /** The current frame's payload as a Buffer (a view, or the spanning copy itself). */
  framePayload(): Buffer {
    const buf = this.frameBuf;
    return this.frameStart === 0 && this.frameEnd === buf.length ? buf : buf.subarray(this.frameStart, this.frameEnd);
  }

  /**
   * Reads the next complete frame into frameType/frameChannel/frameBuf/frameStart/frameEnd
   * without allocating (unless its payload spans socket chunks); false when more bytes are
   * needed. Throws AmqpConnectionError 501 FRAME_ERROR on an oversized frame (detected from
   * the header), a bad frame-end octet, or an unknown frame type. After a throw the
   * reader is unusable: the connection must be closed (RabbitMQ: fatal_frame_error).
   */
  nextFrame(): boolean {
    if (this.size === NO_HEADER) {
      if (this.total < FRAME_HEADER_SIZE) return false;
      this.readHeader();
    }
    const size = this.size;
    const fill = this.fill;
    if (fill !== null) {
      // filled in place by borrowed reads
      if (this.fillPos < size || this.total < 1) return false;
      this.fill = null;
      this.fillPos = 0;
      this.frameBuf = fill;
      this.frameStart = 0;
      this.frameEnd = size;
      this.frameOwned = true;
    } else if (this.total < size + 1) {
      return false;
    } else if (this.pos + size <= this.chunks[this.head]!.length) {
      const chunk = this.chunks[this.head]!;
      // inside one chunk: no copy
      this.frameBuf = chunk;
      this.frameStart = this.pos;
      this.frameEnd = this.pos + size;
      this.frameOwned = false;
      this.skip(size);
    } else {
      const copy = Buffer.allocUnsafe(size); // spans chunks: copy once
      this.copyOut(copy, size);
      this.frameBuf = copy;
      this.frameStart = 0;
      this.frameEnd = size;
      this.frameOwned = true;
    }
    const end = this.readByte();
    const type = this.type;
    this.size = NO_HEADER;
    this.frameType = type;
    this.frameChannel = this.channel;

    // RabbitMQ checks the end marker first (rabbit_reader handle_input), then the type.
    // reply texts follow rabbit_reader's frame_error format: "type T, all octets = <<…>>: reason"
    if (end !== FRAME_END) {
      throw new AmqpConnectionError(
        ReplyCode.FrameError,
        `type ${type}, all octets = ${erlangBinary(this.framePayload())}: {invalid_frame_end_marker,${end}}`,
      );
    }
    if (type !== FrameType.Method && type !== FrameType.Header && type !== FrameType.Body && type !== FrameType.Heartbeat) {
      throw new AmqpConnectionError(ReplyCode.FrameError, `type ${type}, all octets = ${erlangBinary(this.framePayload())}: unknown_frame`);
    }
    return true;
  }

  private readHeader(): void {
    const chunk = this.chunks[this.head]!;
    let type: number;
    let channel: number;
    let size: number;
    if (this.pos + FRAME_HEADER_SIZE <= chunk.length) {
      const p = this.pos;
      type = chunk[p]!;
      channel = (chunk[p + 1]! << 8) | chunk[p + 2]!;
      size = chunk.readUInt32BE(p + 3);
      this.skip(FRAME_HEADER_SIZE);
    } else {
      type = this.readByte();
      channel = (this.readByte() << 8) | this.readByte();
      size = ((this.readByte() << 24) | (this.readByte() << 16) | (this.readByte() << 8) | this.readByte()) >>> 0;
    }
    const frameMax = this.frameMax;
    // spec 4.2.3 + RabbitMQ rabbit_reader: refuse from the header, before buffering the payload.
    if (frameMax !== 0 && size > frameMax - EMPTY_FRAME_SIZE + FRAME_SIZE_FUDGE) {
      throw new AmqpConnectionError(
        ReplyCode.FrameError,
        `type ${type}, all octets = <<>>: {frame_too_large,${size},${frameMax - EMPTY_FRAME_SIZE}}`,
      );
    }
    this.type = type;
    this.channel = channel;
    this.size = size;
  }

  private readByte(): number {
    const chunk = this.chunks[this.head]!;
    const b = chunk[this.pos]!;
    this.skip(1);
    return b;
  }

  /** Advances by n bytes (n ≤ bytes left in the current chunk). */
  private skip(n: number): void {
    this.pos += n;
    this.total -= n;
    if (this.pos === this.chunks[this.head]!.length) this.dropHead();
  }

  /** Copies the next n bytes (possibly across chunks) into out and consumes them. */
  private copyOut(out: Buffer, n: number): void {
    let written = 0;
    while (written < n) {
      const chunk = this.chunks[this.head]!;
      const take = Math.min(n - written, chunk.length - this.pos);
      chunk.copy(out, written, this.pos, this.pos + take);
      written += take;
      this.pos += take;
      this.total -= take;
      if (this.pos === chunk.length) this.dropHead();
    }
  }

  private dropHead(): void {
    this.chunks[this.head] = EMPTY; // release the chunk
    this.head++;
    this.pos = 0;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head >= 64) {
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
  }
}


/** Erlang's rendering of a binary, as RabbitMQ prints payloads in frame errors (cut short past 64 octets). */
export function erlangBinary(b: Buffer): string {
  const shown = b.length > 64 ? [...b.subarray(0, 64)].join(',') + ',...' : [...b].join(',');
  return `<<${shown}>>`;
}
