// RawProducer / RawConsumer: the same surface as Producer / Consumer (producer.mjs,
// consumer.mjs) on the minimal client in raw-amqp.mjs. Selected with `--client raw`.
import { nowMs, writeBodyInto } from './payload.mjs';
import { ConsumerBase } from './consumer.mjs';
import { ProducerBase, waitWhileLagging } from './producer.mjs';
import { RawConnection } from './raw-amqp.mjs';

/** Flush the batch and yield to the event loop every this many publishes. */
const YIELD_EVERY = 256;

/** Fills a body in place; a module function so no closure is made per message. */
function fillBody(buf, offset, producer, seq) {
  writeBodyInto(buf, offset, producer.size, producer.pattern, producer.id, seq, nowMs());
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class RawProducer extends ProducerBase {
  /** Same options as Producer. */
  constructor(o) {
    super(o);
    this.conn = null;
    this.pub = null;
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

  async run(count, deadline, graceMs = 60_000) {
    const conn = this.conn;
    const pub = this.pub;
    const started = performance.now();
    const rate = this.rate;
    const large = pub.frameBytes > 16 * 1024;
    let seq = this.published;
    while (seq < count && this.error === null && !this.halted) {
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
      while (this.outstanding > 0 && this.error === null && !this.halted && performance.now() < graceDeadline) {
        const timer = setTimeout(() => this.resume(), 100);
        await this.waitForWake();
        clearTimeout(timer);
      }
    }
    return { started, publishEnded, confirmedAt: performance.now() };
  }

  /**
   * Closes the connection; waits up to 60 s for close-ok, because a broker that throttles
   * the publisher may still be reading what the socket buffers hold, and a message counted
   * as published must have reached it before the queues are counted.
   */
  async close() {
    this.closeResult = (await this.conn?.close(60_000)) ?? null;
  }
}

export class RawConsumer extends ConsumerBase {
  /** Same options as Consumer. */
  constructor(o) {
    super(o);
    this.conn = null;
    this.consumerTag = null;
  }

  async open() {
    this.conn = await RawConnection.open(this.url);
    this.conn.onError = (err) => this.setError(err);
    if (!this.noAck) await this.conn.qos(this.prefetch);
  }

  async start(target = Infinity, slices = 10) {
    this.expect(target, slices);
    this.conn.onDelivery = (tag, redelivered, body) => this.delivered(body, redelivered, tag);
    this.consumerTag = (await this.conn.consume(this.queue, this.noAck)).consumerTag;
    this.startPacedAcks();
  }

  /** basic.cancel (every delivery sent before it has arrived once it returns), then acks all received. */
  async finish() {
    if (this.consumerTag !== null && this.consumerTag !== undefined) await this.conn.cancel(this.consumerTag);
    this.consumerTag = null;
    this.ackPending();
  }

  /** Ready messages in the queue, asked on this consumer's channel (after its acks). */
  async depth() {
    return (await this.conn.declareQueue(this.queue, { passive: true })).messageCount;
  }

  canAck() {
    return this.conn !== null && this.conn.error === null;
  }

  sendAck(tag) {
    this.conn.ack(tag, true);
  }

  async close() {
    this.stopPacedAcks();
    this.ackPending();
    await this.conn?.close();
  }
}
