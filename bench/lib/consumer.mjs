// One consumer: its own connection and channel, basic.qos prefetch, no-ack or manual
// acks batched with multiple=true, every delivery verified, end-to-end latency recorded,
// and progress checkpoints (arrival time of every slice of the expected count) so a
// drain can be checked for steadiness.
import { connect } from 'amqplib';
import { Histogram } from './histogram.mjs';
import { nowMs } from './payload.mjs';

/**
 * What every consumer client shares: counters, verification and latency of each delivery,
 * batched acks, checkpoints and the wait for a target count. A subclass connects, consumes,
 * calls delivered() for each message, and sends the ack for the reference it passed.
 */
export class ConsumerBase {
  /**
   * @param {object} o
   * @param {string} o.url
   * @param {string} o.queue
   * @param {boolean} o.noAck
   * @param {number} o.prefetch basic.qos prefetch-count (ignored with noAck)
   * @param {number} o.ackEvery ack with multiple=true once this many deliveries are unacked
   * @param {import('./verifier.mjs').Verifier} o.verifier shared by the consumers of a run
   */
  constructor(o) {
    this.url = o.url;
    this.queue = o.queue;
    this.noAck = o.noAck;
    this.prefetch = o.prefetch;
    this.ackEvery = Math.max(1, Math.min(o.ackEvery, o.prefetch || o.ackEvery));
    /**
     * msg/s; > 0 makes a slow consumer (manual acks only): every delivery is verified at
     * once, but acks go out at this rate, so with prefetch N the broker cannot deliver faster.
     */
    this.ackRate = o.noAck ? 0 : (o.ackRate ?? 0);
    /** ack references waiting for their turn (ackRate), oldest first from ackHead */
    this.ackQueue = [];
    this.ackHead = 0;
    this.acked = 0;
    this.ackTimer = null;
    this.ackStart = 0;
    this.verifier = o.verifier;
    this.order = o.verifier.newOrderTracker();
    this.latency = new Histogram();
    /** epoch ms: messages sent earlier are verified but not counted in the latency histogram */
    this.latencyFrom = 0;
    this.received = 0;
    this.unacked = 0;
    /** what sendAck() needs to ack the latest delivery (and, with multiple, all before it) */
    this.lastAck = null;
    this.firstAt = 0;
    this.lastAt = 0;
    this.error = null;
    this.checkpoints = null;
    this.checkpointEvery = 0;
    this.target = Infinity;
    this.waiter = null;
    /** Int32Array on a SharedArrayBuffer and this consumer's slot, set by a client thread */
    this.progress = null;
    this.progressSlot = 0;
  }

  /** With `target` set, done() resolves once that many arrived; every target/slices arrival time is kept. */
  expect(target, slices) {
    this.target = target;
    if (Number.isFinite(target) && slices > 0) {
      this.checkpointEvery = Math.max(1, Math.floor(target / slices));
      this.checkpoints = [];
    }
  }

  /** One delivery: verified, timed, counted, and acked in batches. */
  delivered(body, redelivered, ackRef) {
    const now = performance.now();
    if (this.received === 0) this.firstAt = now;
    this.lastAt = now;
    const sentAt = this.verifier.check(body, redelivered, this.order);
    // latency only for messages sent after the warm-up (--warmup): JIT and caches settle first
    if (sentAt >= this.latencyFrom) this.latency.recordMs(nowMs() - sentAt);
    this.received++;
    // Shared progress (client-worker.mjs): producers read it for --max-lag, so it is kept exact.
    if (this.progress !== null) this.progress[this.progressSlot] = this.received;
    if (this.ackRate > 0) this.ackQueue.push(ackRef);
    else if (!this.noAck) {
      this.unacked++;
      this.lastAck = ackRef;
      if (this.unacked >= this.ackEvery || this.received >= this.target) this.ackPending();
    }
    if (this.checkpoints !== null && this.received % this.checkpointEvery === 0) this.checkpoints.push(now);
    if (this.received >= this.target) this.resume();
  }

  /** Slow consumer (ackRate): every 10 ms, acks (multiple=true) what is due by now. */
  startPacedAcks() {
    if (this.ackRate <= 0 || this.ackTimer !== null) return;
    this.ackStart = performance.now();
    this.ackTimer = setInterval(() => {
      const due = Math.floor(((performance.now() - this.ackStart) * this.ackRate) / 1000) - this.acked;
      const n = Math.min(due, this.ackQueue.length - this.ackHead);
      if (n > 0 && this.canAck()) this.releaseAcks(n);
    }, 10);
  }

  /** Acks the next n waiting deliveries with one multiple=true ack. */
  releaseAcks(n) {
    this.ackHead += n;
    this.acked += n;
    this.sendAck(this.ackQueue[this.ackHead - 1]);
    if (this.ackHead > 4096 && this.ackHead * 2 > this.ackQueue.length) {
      this.ackQueue = this.ackQueue.slice(this.ackHead);
      this.ackHead = 0;
    }
  }

  stopPacedAcks() {
    if (this.ackTimer !== null) clearInterval(this.ackTimer);
    this.ackTimer = null;
  }

  ackPending() {
    if (this.ackRate > 0) {
      this.stopPacedAcks();
      const n = this.ackQueue.length - this.ackHead;
      if (n > 0 && this.canAck()) this.releaseAcks(n);
      return;
    }
    if (this.unacked > 0 && this.lastAck !== null && this.canAck()) {
      this.sendAck(this.lastAck);
      this.unacked = 0;
      this.lastAck = null;
    }
  }

  canAck() {
    return true;
  }

  sendAck(_ackRef) {
    throw new Error('sendAck is the subclass\'s');
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

  /** Resolves when `target` messages arrived, an error occurred, or `deadline` (performance.now() ms) passed. */
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
}

/** An amqplib consumer. */
export class Consumer extends ConsumerBase {
  constructor(o) {
    super(o);
    this.connection = null;
    this.channel = null;
    this.consumerTag = null;
    this.onMessage = (msg) => this.handle(msg);
  }

  async open() {
    this.connection = await connect(this.url, { noDelay: true });
    this.connection.on('error', (err) => this.setError(err));
    this.channel = await this.connection.createChannel();
    this.channel.on('error', (err) => this.setError(err));
    if (!this.noAck) await this.channel.prefetch(this.prefetch);
  }

  /** Starts consuming (see expect() for target and slices). */
  async start(target = Infinity, slices = 10) {
    this.expect(target, slices);
    const ok = await this.channel.consume(this.queue, this.onMessage, { noAck: this.noAck });
    this.consumerTag = ok.consumerTag;
    this.startPacedAcks();
  }

  /** basic.cancel (every delivery sent before it has arrived once it returns), then acks all received. */
  async finish() {
    if (this.consumerTag !== null) await this.channel.cancel(this.consumerTag);
    this.consumerTag = null;
    this.ackPending();
  }

  /** Ready messages in the queue, asked on this consumer's channel (after its acks). */
  async depth() {
    return (await this.channel.checkQueue(this.queue)).messageCount;
  }

  handle(msg) {
    if (msg === null) {
      this.setError(new Error('consumer cancelled by the broker'));
      return;
    }
    this.delivered(msg.content, msg.fields.redelivered, msg);
  }

  sendAck(msg) {
    this.channel.ack(msg, true);
  }

  async close() {
    try {
      this.stopPacedAcks();
      this.ackPending();
      if (this.consumerTag !== null) await this.channel.cancel(this.consumerTag);
      await this.connection?.close();
    } catch {
      // already closed
    }
  }
}
