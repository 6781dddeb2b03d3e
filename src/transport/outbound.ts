import type { Duplex } from 'node:stream';

/** Size of the shared encode buffer; a larger single reservation gets a slab of its own. */
export const SLAB_SIZE = 64 * 1024;
/** A connection's pending bytes are handed to its socket once they reach this much. */
const SEGMENT_FLUSH_BYTES = 32 * 1024;
/**
 * Deliveries stop (`writable` false) once this much waits in the socket's buffer, until
 * 'drain'. Not the socket's 16 KiB high-water mark: a delivery pass would then stop after
 * about 200 small messages (or one 64 KiB body) and wait a turn of the event loop for the
 * drain, while a publisher's socket hands over 64 KiB per read.
 */
export const OUTBOUND_LIMIT = 512 * 1024;

/**
 * The one buffer every connection encodes small frames into (deliveries, confirms). Bytes
 * are never reused: a connection reserves space at `pos`, writes, commits, and later hands
 * its contiguous segment to its socket as one subarray. When the slab is full a new one
 * replaces it; the old one lives on only while sockets still hold segments of it.
 * Only the current `owner` has bytes in the slab that its socket has not been given yet,
 * so a connection's segment is always contiguous.
 */
const slab = {
  buf: Buffer.allocUnsafeSlow(SLAB_SIZE),
  pos: 0,
  owner: null as Outbound | null,
};

function endOfTick(out: Outbound): void {
  try {
    out.flush();
  } catch (err) {
    // never seen; the connection cannot be written to any more: its socket's close cleans up
    out.socket.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * Per-connection writer. Everything a tick produces for one connection leaves in as few
 * socket writes as possible: small frames are encoded straight into the shared slab
 * (reserve → write at `offset` → commit), no Buffer per frame, and handed to the socket
 * as one segment; the socket is corked from the first write of a tick to the next tick,
 * so segments and separately written buffers (large bodies) go out in one writev.
 * `writable` turns false when the socket's buffer holds OUTBOUND_LIMIT bytes; the
 * connection stops delivering until 'drain'.
 */
export class Outbound {
  corked = false;
  writable = true;
  bytesWritten = 0;
  /** socket sends (one corked batch per tick counts once; RabbitMQ's send_cnt) */
  sends = 0;
  /** where this connection's unflushed bytes start in slab.buf (valid while it is the owner) */
  private segmentStart = 0;

  constructor(readonly socket: Duplex) {}

  /**
   * Space for n bytes: returns the buffer to encode into, from `offset` on; then call
   * commit(end). Nothing else may be written to this Outbound in between.
   */
  reserve(n: number): Buffer {
    if (slab.owner !== this) {
      slab.owner?.flushSegment();
      slab.owner = this;
      this.segmentStart = slab.pos;
    }
    if (slab.pos + n > slab.buf.length) {
      this.flushSegment();
      slab.buf = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, n));
      slab.pos = 0;
      slab.owner = this;
      this.segmentStart = 0;
    }
    this.schedule();
    return slab.buf;
  }

  /** Where the space reserve() just returned starts. */
  get offset(): number {
    return slab.pos;
  }

  /** The bytes up to `end` (returned by the encoder) are written. */
  commit(end: number): void {
    this.bytesWritten += end - slab.pos;
    slab.pos = end;
    if (end - this.segmentStart >= SEGMENT_FLUSH_BYTES) this.flushSegment();
  }

  /** A buffer written as is (after any bytes encoded before it). */
  write(buf: Buffer): void {
    if (slab.owner === this) this.flushSegment();
    this.schedule();
    this.bytesWritten += buf.length;
    if (this.closed) return;
    if (!this.socket.write(buf) && this.socket.writableLength >= OUTBOUND_LIMIT) this.writable = false;
  }

  /** End of tick: everything encoded goes to the socket, which is uncorked. */
  flush(): void {
    if (slab.owner === this) this.flushSegment();
    if (this.corked) {
      this.corked = false;
      this.sends++;
      this.socket.uncork();
    }
  }

  /** Hands this connection's encoded bytes to its socket; it stops being the slab's owner. */
  private flushSegment(): void {
    if (slab.owner === this) slab.owner = null;
    const start = this.segmentStart;
    const end = slab.pos;
    if (end === start) return;
    this.segmentStart = end;
    if (this.closed) return;
    if (!this.socket.write(slab.buf.subarray(start, end)) && this.socket.writableLength >= OUTBOUND_LIMIT) this.writable = false;
  }

  /** nothing more can be written: destroyed, or ended (a write after end() is an error) */
  private get closed(): boolean {
    return this.socket.destroyed || this.socket.writableEnded;
  }

  private schedule(): void {
    if (this.corked) return;
    this.corked = true;
    if (!this.closed) this.socket.cork();
    process.nextTick(endOfTick, this);
  }
}
