// A bystander publisher: persistent messages to its own durable queue, one at a time with
// publisher confirms (window 1), one every `intervalMs`. Each confirm's wait is recorded
// with its send time, so a scenario can ask "how long did an unrelated publisher wait for
// its confirms while X happened on the broker?" (a flood, a big queue deletion). Runs in
// the caller's thread on the raw client. At the end its queue is drained and every
// message verified, then deleted.
import { Histogram } from './histogram.mjs';
import { makePattern, nowMs, writeBodyInto } from './payload.mjs';
import { RawConnection } from './raw-amqp.mjs';
import { Verifier } from './verifier.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class ConfirmProbe {
  /**
   * @param {object} o
   * @param {string} o.url
   * @param {string} o.queue its own durable queue (deleted and declared afresh)
   * @param {number} [o.size] body size (default 16)
   * @param {number} [o.intervalMs] time between publishes (default 10)
   */
  constructor({ url, queue, size = 16, intervalMs = 10 }) {
    this.url = url;
    this.queue = queue;
    this.size = size;
    this.intervalMs = intervalMs;
    this.pattern = makePattern(size);
    this.conn = null;
    this.pub = null;
    /** [performance.now() at send, ms until its confirm] */
    this.samples = [];
    this.confirmed = 0;
    this.nacked = 0;
    this.sent = 0;
    this.sentAt = 0;
    this.waiting = null;
    this.stopped = false;
    this.loop = null;
    this.error = null;
  }

  async open() {
    this.conn = await RawConnection.open(this.url);
    this.conn.onError = (err) => {
      this.error ??= err;
      this.wake();
    };
    await this.conn.deleteQueue(this.queue);
    await this.conn.declareQueue(this.queue, { durable: true });
    await this.conn.confirmSelect();
    this.conn.onConfirm = (_tag, _multiple, nack) => {
      if (nack) this.nacked++;
      else this.confirmed++;
      this.wake();
    };
    this.pub = this.conn.publisher('', this.queue, this.size, true);
    return this;
  }

  wake() {
    const w = this.waiting;
    this.waiting = null;
    if (w !== null) w();
  }

  start() {
    this.loop = this.run();
    return this;
  }

  async run() {
    const fill = (buf, offset, probe, seq) => writeBodyInto(buf, offset, probe.size, probe.pattern, 0, seq, nowMs());
    while (!this.stopped && this.error === null) {
      const t0 = performance.now();
      this.sentAt = t0;
      this.pub.publish(fill, this, this.sent);
      this.sent++;
      this.conn.flush();
      while (this.confirmed + this.nacked < this.sent && this.error === null) {
        await new Promise((resolve) => {
          this.waiting = resolve;
        });
      }
      const ms = performance.now() - t0;
      this.samples.push([t0, ms]);
      if (ms < this.intervalMs) await sleep(this.intervalMs - ms);
    }
  }

  /** Stops after the confirm being waited for (bounded by `timeoutMs`). */
  async stop(timeoutMs = 120_000) {
    this.stopped = true;
    let timer;
    await Promise.race([this.loop, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * Confirm waits (ms) in [from, to) (performance.now() ms): count, p50, p99, max. With
   * `completed`, only the waits that ended within the interval (a baseline before an
   * event); otherwise every wait that overlaps it (a message sent just before an event
   * and held up by it counts for the event). A confirm still outstanding counts with its
   * wait so far.
   */
  stats(from = 0, to = Infinity, { completed = false } = {}) {
    const h = new Histogram();
    let max = 0;
    const within = completed ? (t, ms) => t >= from && t + ms < to : (t, ms) => t < to && t + ms >= from;
    for (const [t, ms] of this.samples) {
      if (!within(t, ms)) continue;
      h.recordMs(ms);
      if (ms > max) max = ms;
    }
    if (this.confirmed + this.nacked < this.sent && !completed && this.sentAt < to) {
      const ms = performance.now() - this.sentAt;
      h.recordMs(ms);
      if (ms > max) max = ms;
    }
    const s = h.summary();
    return { count: h.total, p50Ms: s?.p50Ms ?? null, p99Ms: s?.p99Ms ?? null, maxMs: h.total > 0 ? Math.round(max * 1000) / 1000 : null };
  }

  /** Longest confirm wait among messages sent in each `stepMs` slice from `from` (for a time series). */
  maxBySlice(from, stepMs, slices) {
    const out = [];
    for (let i = 0; i < slices; i++) out.push(this.stats(from + i * stepMs, from + (i + 1) * stepMs).maxMs);
    return out;
  }

  /**
   * Drains the probe queue (no-ack) and verifies every message that was confirmed, then
   * deletes the queue and closes. Returns the verifier's verdict.
   */
  async verifyAndClose(timeoutMs = 60_000) {
    const verifier = new Verifier(this.size, this.pattern);
    const order = verifier.newOrderTracker();
    let received = 0;
    try {
      if (this.error !== null) throw this.error;
      this.conn.onDelivery = (_tag, redelivered, body) => {
        verifier.check(body, redelivered, order);
        received++;
        this.wake();
      };
      const { consumerTag } = await this.conn.consume(this.queue, true);
      const deadline = performance.now() + timeoutMs;
      while (received < this.confirmed && this.error === null && performance.now() < deadline) {
        const timer = setTimeout(() => this.wake(), 200);
        await new Promise((resolve) => {
          this.waiting = resolve;
        });
        clearTimeout(timer);
      }
      await this.conn.cancel(consumerTag);
      await this.conn.deleteQueue(this.queue);
    } catch (err) {
      this.error ??= err;
    }
    await this.conn.close();
    // Every confirmed message must be there; one sent but unconfirmed at stop may be too.
    const verdict = verifier.result([received > this.confirmed ? received : this.confirmed]);
    verdict.confirmed = this.confirmed;
    verdict.nacked = this.nacked;
    if (this.error !== null) {
      verdict.ok = false;
      verdict.clientError = this.error.message ?? String(this.error);
    }
    if (this.nacked > 0) {
      verdict.ok = false;
      verdict.firstError ??= `${this.nacked} probe message(s) nacked`;
    }
    return verdict;
  }
}
