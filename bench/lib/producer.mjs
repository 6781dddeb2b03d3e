// One producer: its own connection and channel, a publish loop bounded by a message
// count and a deadline, flow control from amqplib's write buffer ('drain') and, in
// confirm mode, a window of unconfirmed messages.
import { connect } from 'amqplib';
import { encodeBody, nowMs } from './payload.mjs';

/** Publishes between event-loop turns, so consumers in the same process keep running. */
const YIELD_EVERY = 256;

/**
 * --max-lag: pauses (1 ms steps) while the consumers are more than the allowed number of
 * messages behind, so a steady-state run measures a sustainable rate with a bounded queue
 * instead of how fast a backlog grows.
 */
export async function waitWhileLagging(producer, deadline) {
  while (producer.error === null && !producer.halted && performance.now() < deadline && producer.lagging()) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** What every producer client shares: its options, counters, errors and the wake-up it waits on. */
export class ProducerBase {
  /**
   * @param {object} o
   * @param {number} o.id producer id written into every body
   * @param {string} o.url
   * @param {string} o.exchange
   * @param {string} o.routingKey
   * @param {number} o.size body size in bytes
   * @param {Buffer} o.pattern fill from makePattern(size)
   * @param {boolean} o.persistent deliveryMode 2
   * @param {number} o.confirm window of unconfirmed publishes; 0 = no confirms
   * @param {number} [o.rate] msg/s for this producer; 0 or absent = as fast as possible
   */
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
    this.published = 0;
    this.confirmed = 0;
    this.nacked = 0;
    this.outstanding = 0;
    this.wake = null;
    this.error = null;
    /** set by halt(): the publish loop ends at its next turn */
    this.halted = false;
  }

  /** Ends a run early (a broker that stopped taking messages); wakes a wait for 'drain' or confirms. */
  halt() {
    this.halted = true;
    this.resume();
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
}

/** An amqplib producer. */
export class Producer extends ProducerBase {
  constructor(o) {
    super(o);
    this.publishOptions = { persistent: o.persistent };
    this.connection = null;
    this.channel = null;
    // One callback for every confirm (amqplib calls them in order): no closure per message.
    this.onConfirm = (err) => {
      this.outstanding--;
      if (err) this.nacked++;
      else this.confirmed++;
      if (this.wake !== null && this.outstanding < this.confirm) this.resume();
    };
    this.onDrain = () => this.resume();
  }

  async open() {
    this.connection = await connect(this.url, { noDelay: true });
    this.connection.on('error', (err) => this.setError(err));
    this.channel = this.confirm > 0 ? await this.connection.createConfirmChannel() : await this.connection.createChannel();
    this.channel.on('error', (err) => this.setError(err));
    this.channel.on('close', () => this.setError(this.error ?? new Error('channel closed')));
    this.channel.on('drain', this.onDrain);
  }

  /**
   * Publishes until `count` messages are sent or `deadline` (performance.now() ms) passes;
   * in confirm mode also waits (until the deadline plus `graceMs`) for the last confirms.
   * Returns timings in ms (performance.now()).
   */
  async run(count, deadline, graceMs = 60_000) {
    const ch = this.channel;
    const started = performance.now();
    let seq = this.published;
    while (seq < count && this.error === null && !this.halted) {
      if (this.confirm > 0 && this.outstanding >= this.confirm) {
        await this.waitForWake();
        continue;
      }
      if (this.rate > 0) {
        // Pacing (--rate): publish what is due by now, then sleep ~1 ms; the send time in
        // each body is taken when it is built, so pacing gaps never count as latency.
        const now = performance.now();
        if (now >= deadline) break;
        if (seq >= Math.floor(((now - started) * this.rate) / 1000) + 1) {
          await new Promise((resolve) => setTimeout(resolve, 1));
          continue;
        }
      }
      const body = encodeBody(this.size, this.pattern, this.id, seq, nowMs());
      let writable;
      if (this.confirm > 0) {
        this.outstanding++;
        writable = ch.publish(this.exchange, this.routingKey, body, this.publishOptions, this.onConfirm);
      } else {
        writable = ch.publish(this.exchange, this.routingKey, body, this.publishOptions);
      }
      seq++;
      this.published = seq;
      if (!writable) await this.waitForWake();
      if ((seq & (YIELD_EVERY - 1)) === 0) {
        if (performance.now() >= deadline) break;
        if (this.lagging !== null && this.lagging()) await waitWhileLagging(this, deadline);
        else if (writable) await new Promise(setImmediate);
      }
    }
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

  async close() {
    try {
      await this.connection?.close();
    } catch {
      // already closed
    }
  }
}
