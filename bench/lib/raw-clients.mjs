// RawProducer / RawConsumer: the same surface as Producer / Consumer (producer.mjs,
// consumer.mjs) on the minimal client in raw-amqp.mjs. Selected with `--client raw`.
import { Histogram } from './histogram.mjs';
import { nowMs, writeBodyInto } from './payload.mjs';
import { waitWhileLagging } from './producer.mjs';
import { RawConnection } from './raw-amqp.mjs';

/** Flush the batch and yield to the event loop every this many publishes. */
const YIELD_EVERY = 256;

/** Fills a body in place; a module function so no closure is made per message. */
function fillBody(buf, offset, producer, seq) {
  writeBodyInto(buf, offset, producer.size, producer.pattern, producer.id, seq, nowMs());
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class RawProducer {
  /** Same options as Producer, plus o.rate (msg/s for this producer, 0 = as fast as possible). */
  constructor(o) {
    this.id = o.id;
    this.url = o.url;
    this.exchange = o.exchange;
    this.routingKey = o.routingKey;
    this.size = o.size;
    this.pattern = o.pattern;
    this.persistent = o.persistent;
    this.confirm = o.confirm;
    this.rate = o.rate ?? 0;
    /** () => true while consumers lag too far behind (--max-lag); set by the client thread */
    this.lagging = null;
    this.conn = null;
    this.pub = null;
    this.published = 0;
    this.confirmed = 0;
    this.nacked = 0;
    this.outstanding = 0;
    this.error = null;
    this.wake = null;
    // confirms: tags ≤ watermark are settled; singly-settled tags above it are in `singles`
    this.watermark = 0;
    this.singles = new Set();
  }

  async open() {
    this.conn = await RawConnection.open(this.url);
    this.conn.onError = (err) => this.setError(err);
    this.conn.onWritable = () => this.resume();
    if (this.confirm > 0) {
      this.conn.onConfirm = (tag, multiple, nack) => this.settle(tag, multiple, nack);
      await this.conn.confirmSelect();
    }
    this.pub = this.conn.publisher(this.exchange, this.routingKey, this.size, this.persistent);
  }

  settle(tag, multiple, nack) {
    let n = 0;
    if (multiple) {
      if (tag > this.watermark) {
        n = tag - this.watermark;
        for (const t of this.singles) {
          if (t <= tag) {
            n--;
            this.singles.delete(t);
          }
        }
        this.watermark = tag;
      }
    } else if (tag > this.watermark && !this.singles.has(tag)) {
      this.singles.add(tag);
      n = 1;
    }
    this.outstanding -= n;
    if (nack) this.nacked += n;
    else this.confirmed += n;
    if (this.wake !== null && this.outstanding < this.confirm) this.resume();
  }

  setError(err) {
    if (this.error === null) this.error = err;
    this.resume();
  }

  resume() {
    const wake = this.wake;
    this.wake = null;
    if (wake !== null) wake();
  }

  waitForWake() {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  async run(count, deadline, graceMs = 60_000) {
    const conn = this.conn;
    const pub = this.pub;
    const started = performance.now();
    const rate = this.rate;
    const large = pub.frameBytes > 16 * 1024;
    let seq = this.published;
    while (seq < count && this.error === null) {
      if (this.confirm > 0 && this.outstanding >= this.confirm) {
        if (!conn.flush()) await this.waitForWake();
        if (this.outstanding >= this.confirm && this.error === null) await this.waitForWake();
        continue;
      }
      if (rate > 0) {
        // Pacing: publish what is due by now, then sleep ~1 ms; the send time in each body
        // is taken when it is written, so pacing gaps never count as latency.
        const now = performance.now();
        if (now >= deadline) break;
        const due = Math.floor(((now - started) * rate) / 1000) + 1;
        if (seq >= due) {
          if (!conn.flush()) await this.waitForWake();
          else await sleep(1);
          continue;
        }
      }
      pub.publish(fillBody, this, seq);
      seq++;
      this.published = seq;
      if (this.confirm > 0) this.outstanding++;
      // Large bodies: every publish is a flush point, so at most one batch waits in memory.
      if ((seq & (YIELD_EVERY - 1)) === 0 || large) {
        const writable = conn.flush();
        if (performance.now() >= deadline) break;
        // The lag check comes after a wait for 'drain' too: with large bodies the socket
        // nearly always asks for one.
        if (!writable) await this.waitForWake();
        if (this.lagging !== null && this.lagging()) await waitWhileLagging(this, deadline);
        else if (writable) await new Promise(setImmediate);
      }
    }
    conn.flush();
    const publishEnded = performance.now();
    if (this.confirm > 0) {
      const graceDeadline = Math.max(deadline, publishEnded) + graceMs;
      while (this.outstanding > 0 && this.error === null && performance.now() < graceDeadline) {
        const timer = setTimeout(() => this.resume(), 100);
        await this.waitForWake();
        clearTimeout(timer);
      }
    }
    return { started, publishEnded, confirmedAt: performance.now() };
  }

  async close() {
    await this.conn?.close();
  }
}

export class RawConsumer {
  /** Same options as Consumer. */
  constructor(o) {
    this.url = o.url;
    this.queue = o.queue;
    this.noAck = o.noAck;
    this.prefetch = o.prefetch;
    this.ackEvery = Math.max(1, Math.min(o.ackEvery, o.prefetch || o.ackEvery));
    this.verifier = o.verifier;
    this.order = o.verifier.newOrderTracker();
    this.latency = new Histogram();
    /** epoch ms: messages sent earlier are verified but not counted in the latency histogram */
    this.latencyFrom = 0;
    this.received = 0;
    this.unacked = 0;
    this.lastTag = 0;
    this.firstAt = 0;
    this.lastAt = 0;
    this.conn = null;
    this.error = null;
    this.checkpoints = null;
    this.checkpointEvery = 0;
    this.target = Infinity;
    this.waiter = null;
    /** Int32Array on a SharedArrayBuffer and this consumer's slot, set by a client thread */
    this.progress = null;
    this.progressSlot = 0;
  }

  async open() {
    this.conn = await RawConnection.open(this.url);
    this.conn.onError = (err) => this.setError(err);
    if (!this.noAck) await this.conn.qos(this.prefetch);
  }

  async start(target = Infinity, slices = 10) {
    this.target = target;
    if (Number.isFinite(target) && slices > 0) {
      this.checkpointEvery = Math.max(1, Math.floor(target / slices));
      this.checkpoints = [];
    }
    this.conn.onDelivery = (tag, redelivered, body) => this.handle(tag, redelivered, body);
    await this.conn.consume(this.queue, this.noAck);
  }

  handle(tag, redelivered, body) {
    const now = performance.now();
    if (this.received === 0) this.firstAt = now;
    this.lastAt = now;
    const sentAt = this.verifier.check(body, redelivered, this.order);
    // latency only for messages sent after the warm-up (--warmup): JIT and caches settle first
    if (sentAt >= this.latencyFrom) this.latency.recordMs(nowMs() - sentAt);
    this.received++;
    // Shared progress (client-worker.mjs): producers read it for --max-lag, so it is kept exact.
    if (this.progress !== null) this.progress[this.progressSlot] = this.received;
    if (!this.noAck) {
      this.unacked++;
      this.lastTag = tag;
      if (this.unacked >= this.ackEvery || this.received >= this.target) this.ackPending();
    }
    if (this.checkpoints !== null && this.received % this.checkpointEvery === 0) this.checkpoints.push(now);
    if (this.received >= this.target) this.resume();
  }

  ackPending() {
    if (this.unacked > 0 && this.conn !== null && this.conn.error === null) {
      this.conn.ack(this.lastTag, true);
      this.unacked = 0;
    }
  }

  setError(err) {
    if (this.error === null) this.error = err;
    this.resume();
  }

  resume() {
    const w = this.waiter;
    this.waiter = null;
    if (w !== null) w();
  }

  async done(deadline) {
    while (this.received < this.target && this.error === null && performance.now() < deadline) {
      const timer = setTimeout(() => this.resume(), Math.min(500, Math.max(1, deadline - performance.now())));
      await new Promise((resolve) => {
        this.waiter = resolve;
      });
      clearTimeout(timer);
    }
    return this.received >= this.target;
  }

  async close() {
    this.ackPending();
    await this.conn?.close();
  }
}
