import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkClose, type Close, type ExpectedClose } from './closes.js';

/**
 * A deliberately tiny AMQP 0-9-1 client over a TCP socket (or any duplex stream), with hand-encoded frames,
 * so the conformance suite can send what no well-behaved client would (bad frame ends,
 * unknown frame types, frames out of order) and observe exactly what the broker replies.
 * It knows only the handful of methods the suite needs.
 */

export const PROTOCOL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]); // "AMQP" 0 0 9 1
/** The AMQP 0-9 header ("AMQP" 1 1 0 9) that 0-9 clients such as Perl's Net::AMQP send; RabbitMQ speaks 0-9-1 to them. */
export const PROTOCOL_HEADER_0_9 = Buffer.from([0x41, 0x4d, 0x51, 0x50, 1, 1, 0, 9]);

export const FrameType = { Method: 1, Header: 2, Body: 3, Heartbeat: 8 } as const;
export const FRAME_END = 0xce;

export interface RawFrame {
  type: number;
  channel: number;
  payload: Buffer;
}

export interface RawMethod {
  channel: number;
  classId: number;
  methodId: number;
  args: Buffer;
}

export interface TuneInfo {
  channelMax: number;
  frameMax: number;
  heartbeat: number;
}

/** class/method ids the suite uses (spec numbering). */
export const M = {
  ConnectionStart: [10, 10],
  ConnectionStartOk: [10, 11],
  ConnectionTune: [10, 30],
  ConnectionTuneOk: [10, 31],
  ConnectionOpen: [10, 40],
  ConnectionOpenOk: [10, 41],
  ConnectionClose: [10, 50],
  ConnectionCloseOk: [10, 51],
  ChannelOpen: [20, 10],
  ChannelOpenOk: [20, 11],
  ChannelFlow: [20, 20],
  ChannelFlowOk: [20, 21],
  ChannelClose: [20, 40],
  ChannelCloseOk: [20, 41],
  QueueDeclare: [50, 10],
  QueueDeclareOk: [50, 11],
  QueueDelete: [50, 40],
  QueueDeleteOk: [50, 41],
  BasicPublish: [60, 40],
  BasicGet: [60, 70],
  BasicGetOk: [60, 71],
  BasicGetEmpty: [60, 72],
} as const satisfies Record<string, readonly [number, number]>;

// ---- encoding -------------------------------------------------------------------------

/** Builds a method/argument payload field by field. */
export class ArgWriter {
  private readonly parts: Buffer[] = [];

  octet(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  short(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }
  long(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }
  longlong(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  shortstr(s: string): this {
    const body = Buffer.from(s, 'utf8');
    this.parts.push(Buffer.from([body.length]), body);
    return this;
  }
  longstr(s: string | Buffer): this {
    const body = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    this.long(body.length);
    this.parts.push(body);
    return this;
  }
  /** Only the value kinds the suite needs: strings (S), booleans (t), signed 32-bit ints (I). */
  table(t: Record<string, string | boolean | number> = {}): this {
    const w = new ArgWriter();
    for (const [k, v] of Object.entries(t)) {
      w.shortstr(k);
      if (typeof v === 'string') w.octet(0x53).longstr(v);
      else if (typeof v === 'boolean') w.octet(0x74).octet(v ? 1 : 0);
      else {
        const b = Buffer.alloc(4);
        b.writeInt32BE(v);
        w.octet(0x49).raw(b);
      }
    }
    const body = w.toBuffer();
    this.long(body.length);
    this.parts.push(body);
    return this;
  }
  /** Packs consecutive bit fields into one octet, first bit in the least significant position. */
  bits(...flags: boolean[]): this {
    let v = 0;
    flags.forEach((f, i) => {
      if (f) v |= 1 << i;
    });
    return this.octet(v);
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function encodeFrame(type: number, channel: number, payload: Buffer, frameEnd = FRAME_END): Buffer {
  const f = Buffer.alloc(7 + payload.length + 1);
  f.writeUInt8(type, 0);
  f.writeUInt16BE(channel, 1);
  f.writeUInt32BE(payload.length, 3);
  payload.copy(f, 7);
  f.writeUInt8(frameEnd, 7 + payload.length);
  return f;
}

export function encodeMethod(channel: number, [classId, methodId]: readonly [number, number], args: Buffer = Buffer.alloc(0)): Buffer {
  const payload = Buffer.alloc(4 + args.length);
  payload.writeUInt16BE(classId, 0);
  payload.writeUInt16BE(methodId, 2);
  args.copy(payload, 4);
  return encodeFrame(FrameType.Method, channel, payload);
}

/** Content header for class basic (60) with no properties set. */
export function encodeContentHeader(channel: number, bodySize: number): Buffer {
  const payload = new ArgWriter().short(60).short(0).longlong(BigInt(bodySize)).short(0).toBuffer();
  return encodeFrame(FrameType.Header, channel, payload);
}

export function encodeBody(channel: number, body: Buffer): Buffer {
  return encodeFrame(FrameType.Body, channel, body);
}

export function encodeHeartbeat(channel = 0): Buffer {
  return encodeFrame(FrameType.Heartbeat, channel, Buffer.alloc(0));
}

export const args = (): ArgWriter => new ArgWriter();

/** basic.publish(exchange, routingKey) with mandatory/immediate off. */
export function basicPublishArgs(exchange: string, routingKey: string): Buffer {
  return args().short(0).shortstr(exchange).shortstr(routingKey).bits(false, false).toBuffer();
}

/** queue.declare(name) non-passive, non-durable, non-exclusive, auto-delete as told. */
export function queueDeclareArgs(queue: string, opts: { exclusive?: boolean; autoDelete?: boolean } = {}): Buffer {
  return args()
    .short(0)
    .shortstr(queue)
    .bits(false, false, opts.exclusive ?? false, opts.autoDelete ?? false, false)
    .table()
    .toBuffer();
}

// ---- decoding -------------------------------------------------------------------------

/** Reads fields sequentially from a method payload. */
export class ArgReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  octet(): number {
    return this.buf.readUInt8(this.pos++);
  }
  short(): number {
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  long(): number {
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  shortstr(): string {
    const n = this.octet();
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  longstr(): Buffer {
    const n = this.long();
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

export function decodeMethod(frame: RawFrame): RawMethod {
  return {
    channel: frame.channel,
    classId: frame.payload.readUInt16BE(0),
    methodId: frame.payload.readUInt16BE(2),
    args: frame.payload.subarray(4),
  };
}

/** connection.close and channel.close share one argument layout. */
export function decodeClose(m: RawMethod): Close {
  const r = new ArgReader(m.args);
  return { code: r.short(), text: r.shortstr(), method: [r.short(), r.short()] };
}

export function isMethod(m: RawMethod, [classId, methodId]: readonly [number, number]): boolean {
  return m.classId === classId && m.methodId === methodId;
}

/** Thrown when the server sends something else than the method awaited; carries a close's arguments. */
export class UnexpectedMethodError extends Error {
  readonly close: Close | null;
  constructor(
    expected: readonly [number, number],
    readonly got: RawMethod,
  ) {
    const close = isMethod(got, M.ConnectionClose) || isMethod(got, M.ChannelClose) ? decodeClose(got) : null;
    super(`expected method ${expected.join('.')}, got ${got.classId}.${got.methodId}${close ? ` ${JSON.stringify(close)}` : ''}`);
    this.close = close;
  }
}

// ---- the client -------------------------------------------------------------------------

export class RawClient {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private ended = false;
  /** Resolves when the server closes (or resets) the TCP connection. */
  readonly closed: Promise<void>;

  /** A client over any duplex stream: a TCP socket, or one end of an in-memory pair. */
  constructor(readonly socket: Duplex) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      });
    });
    // a reset after the server's close is an expected outcome of these tests
    socket.on('error', () => {});
  }

  static async connect(url: string): Promise<RawClient> {
    const u = new URL(url);
    const socket = new Socket();
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(Number(u.port || 5672), u.hostname, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new RawClient(socket);
  }

  /** The local TCP port (undefined over an in-memory stream). */
  get localPort(): number | undefined {
    return this.socket instanceof Socket ? this.socket.localPort : undefined;
  }

  /** A client over an already connected stream (e.g. one end of `stream.duplexPair()`). */
  static over(stream: Duplex): RawClient {
    return new RawClient(stream);
  }

  /** Connects and completes the handshake (PLAIN credentials and vhost taken from the URL). */
  static async open(url: string, tune: Partial<TuneInfo> = {}, stream?: Duplex): Promise<{ client: RawClient; tune: TuneInfo }> {
    const client = stream === undefined ? await RawClient.connect(url) : RawClient.over(stream);
    try {
      const negotiated = await client.handshake(url, tune);
      return { client, tune: negotiated };
    } catch (e) {
      client.destroy();
      throw e;
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private async waitForData(): Promise<void> {
    if (this.ended) throw new Error('socket closed');
    await new Promise<void>((resolve) => (this.waiter = resolve));
  }

  /** When set, every write is split into one-octet writes (proves the server reassembles frames). */
  bytewise = false;

  write(b: Buffer): void {
    if (!this.bytewise) {
      this.socket.write(b);
      return;
    }
    for (let i = 0; i < b.length; i++) this.socket.write(b.subarray(i, i + 1));
  }

  sendMethod(channel: number, method: readonly [number, number], a?: Buffer): void {
    this.write(encodeMethod(channel, method, a));
  }

  /** Next complete frame from the server; rejects if the socket closes first. */
  async nextFrame(): Promise<RawFrame> {
    for (;;) {
      if (this.buf.length >= 7) {
        const size = this.buf.readUInt32BE(3);
        if (this.buf.length >= 8 + size) {
          const frame = { type: this.buf[0]!, channel: this.buf.readUInt16BE(1), payload: this.buf.subarray(7, 7 + size) };
          if (this.buf[7 + size] !== FRAME_END) throw new Error(`bad frame end from server: ${this.buf[7 + size]}`);
          this.buf = this.buf.subarray(8 + size);
          return frame;
        }
      }
      await this.waitForData();
    }
  }

  /** Next method frame, skipping heartbeats. */
  async nextMethod(): Promise<RawMethod> {
    for (;;) {
      const f = await this.nextFrame();
      if (f.type === FrameType.Heartbeat) continue;
      if (f.type !== FrameType.Method) throw new Error(`expected a method frame, got type ${f.type}`);
      return decodeMethod(f);
    }
  }

  async expectMethod(method: readonly [number, number]): Promise<RawMethod> {
    const m = await this.nextMethod();
    if (!isMethod(m, method)) throw new UnexpectedMethodError(method, m);
    return m;
  }

  /** Every byte the server sends until it closes the socket (for non-frame replies, e.g. a protocol header). */
  async readUntilClose(): Promise<Buffer> {
    await this.closed;
    const all = this.buf;
    this.buf = Buffer.alloc(0);
    return all;
  }

  /** The server's connection.start, once the handshake has begun. */
  connectionStart: RawMethod | null = null;

  /** Handshake as a 0-9-1 client (or as one that sends `header`), PLAIN credentials and vhost from the URL. */
  async handshake(url: string, want: Partial<TuneInfo> = {}, header: Buffer = PROTOCOL_HEADER): Promise<TuneInfo> {
    const u = new URL(url);
    const user = decodeURIComponent(u.username || 'guest');
    const pass = decodeURIComponent(u.password || 'guest');
    const vhost = u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : '/';
    this.write(header);
    this.connectionStart = await this.expectMethod(M.ConnectionStart);
    this.sendMethod(
      0,
      M.ConnectionStartOk,
      args().table({ product: 'warren-conformance-raw' }).shortstr('PLAIN').longstr(`\0${user}\0${pass}`).shortstr('en_US').toBuffer(),
    );
    const tuneMethod = await this.expectMethod(M.ConnectionTune);
    const r = new ArgReader(tuneMethod.args);
    const proposed = { channelMax: r.short(), frameMax: r.long(), heartbeat: r.short() };
    const tune: TuneInfo = {
      channelMax: want.channelMax ?? proposed.channelMax,
      frameMax: want.frameMax ?? proposed.frameMax,
      heartbeat: want.heartbeat ?? 0,
    };
    this.sendMethod(0, M.ConnectionTuneOk, args().short(tune.channelMax).long(tune.frameMax).short(tune.heartbeat).toBuffer());
    this.sendMethod(0, M.ConnectionOpen, args().shortstr(vhost).shortstr('').bits(false).toBuffer());
    await this.expectMethod(M.ConnectionOpenOk);
    return tune;
  }

  async openChannel(channel: number): Promise<void> {
    this.sendMethod(channel, M.ChannelOpen, args().shortstr('').toBuffer());
    await this.expectMethod(M.ChannelOpenOk);
  }

  /**
   * Asserts the broker closes the connection as `expected` says: reads (skipping whatever
   * comes first) until connection.close, answers close-ok as the spec asks, and waits for the
   * broker to close the socket. Resolves with the close.
   */
  async expectConnectionClose(expected: ExpectedClose): Promise<Close> {
    const close = await this.drainUntilClosed();
    if (close === null) throw new Error('the broker closed the socket without sending connection.close');
    checkClose(close, expected);
    return close;
  }

  /** Asserts the next method is channel.close on `channel` as `expected` says, and answers close-ok. */
  async expectChannelClose(channel: number, expected: ExpectedClose): Promise<Close> {
    const m = await this.expectMethod(M.ChannelClose);
    if (m.channel !== channel) throw new Error(`channel.close on ${m.channel}, expected ${channel}`);
    this.sendMethod(channel, M.ChannelCloseOk);
    const close = decodeClose(m);
    checkClose(close, expected);
    return close;
  }

  /**
   * Reads until the server closes the socket, answering a connection.close with close-ok.
   * Resolves with that close, or null if the server just dropped the socket.
   */
  async drainUntilClosed(): Promise<Close | null> {
    let close: Close | null = null;
    try {
      for (;;) {
        const f = await this.nextFrame();
        if (f.type !== FrameType.Method) continue;
        const m = decodeMethod(f);
        if (isMethod(m, M.ConnectionClose)) {
          close = decodeClose(m);
          this.sendMethod(0, M.ConnectionCloseOk);
        }
      }
    } catch {
      // socket closed
    }
    await this.closed;
    return close;
  }

  /** Clean client-initiated close. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.sendMethod(0, M.ConnectionClose, args().short(200).shortstr('bye').short(0).short(0).toBuffer());
    try {
      for (;;) {
        const m = await this.nextMethod();
        if (isMethod(m, M.ConnectionCloseOk)) break;
      }
    } catch {
      // socket already gone: nothing left to close
    }
    this.socket.end();
    await this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
