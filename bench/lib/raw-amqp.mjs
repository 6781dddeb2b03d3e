// A minimal AMQP 0-9-1 client for the load generator: one connection, one channel,
// just what a producer and a consumer need (handshake, queue setup, qos, consume,
// publish, confirms, acks). It exists because amqplib's per-message client CPU (it
// published 215 k msg/s where this client published 323 k, against Warren in threads) is,
// on a small machine, CPU the broker under test cannot use.
// Frames are read with Warren's FrameReader and methods decoded / encoded with Warren's
// generated codec from dist/protocol (`npm run build` first). The same client talks to
// every broker, so the comparison stays fair; it is not Warren's server code path.
//
// Hot path: a publish is written straight into a batch buffer (method + header + body
// frames, precomputed prefix, no per-message allocation); a delivery is parsed from the
// frame payloads with no per-message closure.
import { connect as netConnect } from 'node:net';

const dist = new URL('../../dist/protocol/index.js', import.meta.url);
let P = null;
/** Loads Warren's protocol codec lazily, so the amqplib path works without a build. */
export async function loadCodec() {
  if (P === null) {
    try {
      P = await import(dist.href);
    } catch (err) {
      throw new Error(`--client raw needs Warren's codec in dist/protocol (run \`npm run build\`): ${err.message}`);
    }
  }
  return P;
}

const FRAME_METHOD = 1;
const FRAME_HEADER = 2;
const FRAME_BODY = 3;
const FRAME_HEARTBEAT = 8;
const FRAME_END = 0xce;
const CLASS_BASIC = 60;
// method ids (class << 16 | method)
const BASIC_DELIVER = (60 << 16) | 60;
const BASIC_ACK = (60 << 16) | 80;
const BASIC_NACK = (60 << 16) | 120;
const BASIC_CANCEL = (60 << 16) | 30;
const CHANNEL_CLOSE = (20 << 16) | 40;
const CONNECTION_CLOSE = (10 << 16) | 50;
const CONNECTION_BLOCKED = (10 << 16) | 60;
const CONNECTION_UNBLOCKED = (10 << 16) | 61;

/** Flush the publish batch once it holds this many bytes. */
const BATCH_BYTES = 64 * 1024;

export class RawConnection {
  constructor(socket, codec) {
    this.socket = socket;
    this.P = codec;
    this.reader = new codec.FrameReader(0);
    this.frameMax = 131072;
    /** FIFO of { id, resolve, reject } for synchronous replies on channel 1 / 0 */
    this.pending = [];
    this.error = null;
    this.closed = false;
    // async callbacks, set by the user
    this.onDelivery = null; // (deliveryTag, redelivered, body, rawProperties) => void
    this.onConfirm = null; // (deliveryTag, multiple, nack) => void
    this.onError = null; // (err) => void
    this.onWritable = null; // () => void, after 'drain'
    // content being assembled
    this.dTag = 0;
    this.dRedelivered = false;
    this.dSize = -1;
    this.dProps = null;
    this.dParts = null;
    this.dGot = 0;
    this.expectDeliveryHeader = false;
    // publish batch
    this.batch = Buffer.allocUnsafe(BATCH_BYTES * 2);
    this.batchLen = 0;
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('socket closed')));
    socket.on('drain', () => {
      if (this.onWritable !== null) this.onWritable();
    });
  }

  /** Connects, runs the handshake (PLAIN, heartbeat 0) and opens channel 1. */
  static async open(url, { frameMax = 131072 } = {}) {
    const codec = await loadCodec();
    const u = new URL(url);
    const socket = netConnect({ host: u.hostname || '127.0.0.1', port: Number(u.port || 5672), noDelay: true });
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new RawConnection(socket, codec);
    const { MethodId } = codec;
    const started = c.expect(MethodId.ConnectionStart);
    socket.write(codec.PROTOCOL_HEADER);
    await started;
    const user = decodeURIComponent(u.username || 'guest');
    const pass = decodeURIComponent(u.password || 'guest');
    const clientProperties = new Map([
      ['product', { type: 'S', value: Buffer.from('warren-perf raw client') }],
      ['capabilities', { type: 'F', value: new Map([['publisher_confirms', { type: 't', value: true }], ['consumer_cancel_notify', { type: 't', value: true }]]) }],
    ]);
    const tune = c.expect(MethodId.ConnectionTune);
    c.send(0, { id: MethodId.ConnectionStartOk, args: { clientProperties, mechanism: 'PLAIN', response: Buffer.from(`\0${user}\0${pass}`), locale: 'en_US' } });
    const t = await tune;
    c.frameMax = t.frameMax === 0 ? frameMax : Math.min(t.frameMax, frameMax);
    c.reader.frameMax = c.frameMax;
    // heartbeat 0: the benchmark connections are short-lived and busy
    c.send(0, { id: MethodId.ConnectionTuneOk, args: { channelMax: t.channelMax === 0 ? 2047 : Math.min(2047, t.channelMax), frameMax: c.frameMax, heartbeat: 0 } });
    const vhost = u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : '/';
    await c.call(0, { id: MethodId.ConnectionOpen, args: { virtualHost: vhost } }, MethodId.ConnectionOpenOk);
    await c.call(1, { id: MethodId.ChannelOpen, args: {} }, MethodId.ChannelOpenOk);
    return c;
  }

  fail(err) {
    if (this.error === null && !this.closed) this.error = err;
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) p.reject(err);
    if (this.onError !== null && !this.closed) this.onError(err);
  }

  send(channel, method) {
    this.socket.write(this.P.encodeMethodFrame(channel, method));
  }

  expect(id) {
    return new Promise((resolve, reject) => {
      if (this.error !== null) reject(this.error);
      else this.pending.push({ id, resolve, reject });
    });
  }

  /** Sends a synchronous method and resolves with the reply's args. */
  call(channel, method, replyId) {
    const p = this.expect(replyId);
    this.send(channel, method);
    return p;
  }

  onData(chunk) {
    const reader = this.reader;
    reader.push(chunk);
    try {
      for (let f = reader.next(); f !== null; f = reader.next()) this.onFrame(f.type, f.payload);
    } catch (err) {
      this.fail(err);
      this.socket.destroy();
    }
  }

  onFrame(type, payload) {
    if (type === FRAME_METHOD) {
      const id = payload.readUInt32BE(0);
      if (id === BASIC_DELIVER) {
        // consumer-tag shortstr, delivery-tag u64, redelivered bit, exchange, routing-key
        const tagLen = payload[4];
        let o = 5 + tagLen;
        this.dTag = Number(payload.readBigUInt64BE(o));
        this.dRedelivered = (payload[o + 8] & 1) === 1;
        this.expectDeliveryHeader = true;
        return;
      }
      if (id === BASIC_ACK || id === BASIC_NACK) {
        if (this.onConfirm !== null) this.onConfirm(Number(payload.readBigUInt64BE(4)), (payload[12] & 1) === 1, id === BASIC_NACK);
        return;
      }
      const m = this.P.decodeMethod(payload);
      if (m.id === CONNECTION_CLOSE || m.id === CHANNEL_CLOSE) {
        const err = new Error(`${m.id === CONNECTION_CLOSE ? 'connection' : 'channel'} closed by the broker: ${m.args.replyCode} ${m.args.replyText}`);
        if (m.id === CONNECTION_CLOSE) this.socket.write(this.P.encodeMethodFrame(0, { id: m.id + 1, args: {} }));
        this.fail(err);
        return;
      }
      if (m.id === BASIC_CANCEL) {
        this.fail(new Error('consumer cancelled by the broker'));
        return;
      }
      if (m.id === CONNECTION_BLOCKED || m.id === CONNECTION_UNBLOCKED) return;
      const p = this.pending[0];
      if (p !== undefined && p.id === m.id) {
        this.pending.shift();
        p.resolve(m.args);
      }
      return;
    }
    if (type === FRAME_HEADER) {
      if (!this.expectDeliveryHeader) return;
      this.expectDeliveryHeader = false;
      this.dSize = Number(payload.readBigUInt64BE(4));
      this.dProps = payload.subarray(12); // a view: decode it (P.decodeBasicProperties) only if needed
      this.dGot = 0;
      this.dParts = null;
      if (this.dSize === 0) this.deliver(Buffer.alloc(0));
      return;
    }
    if (type === FRAME_BODY) {
      if (this.dSize < 0) return;
      if (this.dGot === 0 && payload.length === this.dSize) {
        this.deliver(payload);
        return;
      }
      if (this.dParts === null) this.dParts = [];
      this.dParts.push(payload);
      this.dGot += payload.length;
      if (this.dGot >= this.dSize) this.deliver(Buffer.concat(this.dParts, this.dGot));
      return;
    }
    if (type === FRAME_HEARTBEAT) return;
  }

  deliver(body) {
    this.dSize = -1;
    this.dParts = null;
    this.dGot = 0;
    if (this.onDelivery !== null) this.onDelivery(this.dTag, this.dRedelivered, body, this.dProps);
  }

  // ---- setup helpers (not on the hot path) ----

  confirmSelect() {
    const { MethodId } = this.P;
    return this.call(1, { id: MethodId.ConfirmSelect, args: { nowait: false } }, MethodId.ConfirmSelectOk);
  }

  qos(prefetchCount) {
    const { MethodId } = this.P;
    return this.call(1, { id: MethodId.BasicQos, args: { prefetchSize: 0, prefetchCount, global: false } }, MethodId.BasicQosOk);
  }

  /** basic.consume; resolves with { consumerTag }. */
  consume(queue, noAck) {
    const { MethodId } = this.P;
    return this.call(1, { id: MethodId.BasicConsume, args: { queue, consumerTag: '', noLocal: false, noAck, exclusive: false, noWait: false, arguments: new Map() } }, MethodId.BasicConsumeOk);
  }

  /**
   * basic.cancel; resolves once basic.cancel-ok arrives. Every delivery the broker sent
   * before it has been handed to onDelivery by then (one channel, in order).
   */
  cancel(consumerTag) {
    const { MethodId } = this.P;
    return this.call(1, { id: MethodId.BasicCancel, args: { consumerTag, noWait: false } }, MethodId.BasicCancelOk);
  }

  /** queue.declare (passive: only its counts); resolves with { queue, messageCount, consumerCount }. */
  declareQueue(queue, { durable = false, exclusive = false, autoDelete = false, passive = false } = {}) {
    const { MethodId } = this.P;
    return this.call(1, { id: MethodId.QueueDeclare, args: { queue, passive, durable, exclusive, autoDelete, noWait: false, arguments: new Map() } }, MethodId.QueueDeclareOk);
  }

  deleteQueue(queue) {
    const { MethodId } = this.P;
    return this.call(1, { id: MethodId.QueueDelete, args: { queue, ifUnused: false, ifEmpty: false, noWait: false } }, MethodId.QueueDeleteOk);
  }

  /** queue.purge; resolves with { messageCount }. */
  purgeQueue(queue) {
    const { MethodId } = this.P;
    return this.call(1, { id: MethodId.QueuePurge, args: { queue, noWait: false } }, MethodId.QueuePurgeOk);
  }

  /**
   * One publish with any properties (an object for the codec's encodeBasicProperties),
   * encoded on the spot: for request-reply, where every message differs.
   */
  publishOne(exchange, routingKey, body, properties) {
    const P = this.P;
    const parts = [
      P.encodeMethodFrame(1, { id: P.MethodId.BasicPublish, args: { exchange, routingKey, mandatory: false, immediate: false } }),
      P.encodeContentHeaderFrame(1, CLASS_BASIC, body.length, P.encodeBasicProperties(properties)),
      ...P.encodeBodyFrames(1, body, this.frameMax),
    ];
    return this.socket.write(Buffer.concat(parts));
  }

  /** basic.ack on channel 1: 21 bytes written by hand, no encoder call. */
  ack(deliveryTag, multiple) {
    const b = Buffer.allocUnsafe(21);
    b[0] = FRAME_METHOD;
    b.writeUInt16BE(1, 1);
    b.writeUInt32BE(13, 3);
    b.writeUInt32BE(BASIC_ACK, 7);
    b.writeBigUInt64BE(BigInt(deliveryTag), 11);
    b[19] = multiple ? 1 : 0;
    b[20] = FRAME_END;
    return this.socket.write(b);
  }

  /**
   * A fixed-shape publisher: exchange, routing key, body size and properties are set
   * once; each publish copies a precomputed prefix and lets the caller fill the body.
   */
  publisher(exchange, routingKey, size, persistent) {
    const P = this.P;
    const method = P.encodeMethodFrame(1, { id: P.MethodId.BasicPublish, args: { exchange, routingKey, mandatory: false, immediate: false } });
    const props = P.encodeBasicProperties(persistent ? { deliveryMode: 2 } : {});
    const header = P.encodeContentHeaderFrame(1, CLASS_BASIC, size, props);
    const bodyFrames = [];
    const maxPayload = this.frameMax - 8;
    for (let off = 0; off < size; off += maxPayload) bodyFrames.push(Math.min(maxPayload, size - off));
    return new RawPublisher(this, Buffer.concat([method, header]), bodyFrames, size);
  }

  /** Writes out the publish batch; false when the socket asks us to wait for 'drain'. */
  flush() {
    if (this.batchLen === 0) return !this.socket.writableNeedDrain;
    const out = Buffer.from(this.batch.subarray(0, this.batchLen));
    this.batchLen = 0;
    return this.socket.write(out);
  }

  get writable() {
    return !this.socket.writableNeedDrain;
  }

  /**
   * connection.close, then waits (at most `timeoutMs`) for close-ok: the broker has then
   * taken every frame written before it. Resolves with { closeOk, ms }.
   */
  async close(timeoutMs = 5000) {
    if (this.closed) return { closeOk: false, ms: 0 };
    const { MethodId } = this.P;
    const t0 = performance.now();
    let closeOk = false;
    try {
      this.flush();
      if (this.error === null) {
        await withTimeout(this.call(0, { id: MethodId.ConnectionClose, args: { replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 } }, MethodId.ConnectionCloseOk), timeoutMs);
        closeOk = true;
      }
    } catch {
      // closing anyway
    }
    this.closed = true;
    this.socket.destroy();
    return { closeOk, ms: Math.round(performance.now() - t0) };
  }
}

function withTimeout(p, ms) {
  let timer;
  return Promise.race([p, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]).finally(() => clearTimeout(timer));
}

export class RawPublisher {
  constructor(conn, prefix, bodyFrames, size) {
    this.conn = conn;
    this.prefix = prefix;
    this.bodyFrames = bodyFrames;
    this.size = size;
    this.frameBytes = prefix.length + size + bodyFrames.length * 8;
  }

  /**
   * Appends one publish to the batch; returns the offset where the body goes so the
   * caller writes it in place (fill(buffer, offset)) — bodies larger than one frame are
   * written into a scratch buffer and copied frame by frame.
   */
  publish(fillBody, a, b, c) {
    const conn = this.conn;
    if (conn.batchLen + this.frameBytes > BATCH_BYTES) conn.flush();
    let buf = conn.batch;
    if (this.frameBytes > buf.length) buf = conn.batch = Buffer.allocUnsafe(this.frameBytes * 2);
    let o = conn.batchLen;
    o += this.prefix.copy(buf, o);
    if (this.bodyFrames.length === 1) {
      buf[o] = FRAME_BODY;
      buf.writeUInt16BE(1, o + 1);
      buf.writeUInt32BE(this.size, o + 3);
      fillBody(buf, o + 7, a, b, c);
      o += 7 + this.size;
      buf[o++] = FRAME_END;
    } else {
      if (this.scratch === undefined) this.scratch = Buffer.allocUnsafe(this.size);
      fillBody(this.scratch, 0, a, b, c);
      let off = 0;
      for (const n of this.bodyFrames) {
        buf[o] = FRAME_BODY;
        buf.writeUInt16BE(1, o + 1);
        buf.writeUInt32BE(n, o + 3);
        this.scratch.copy(buf, o + 7, off, off + n);
        off += n;
        o += 7 + n;
        buf[o++] = FRAME_END;
      }
    }
    conn.batchLen = o;
  }
}
