// Checks every delivery against what the producers sent: each (producer, seq) arrives
// exactly once, bodies are intact, and each consumer sees each producer's messages in
// increasing order (spec: messages from one publisher on one channel to one queue are
// delivered in publish order; with several consumers on a queue each sees a subsequence).
import { HEADER_SIZE, fillIntact } from './payload.mjs';

class SeenSet {
  constructor() {
    this.bits = new Uint32Array(1024);
    this.unique = 0;
  }

  /** Marks seq; false when it was already seen. */
  add(seq) {
    const word = seq >>> 5;
    if (word >= this.bits.length) {
      let n = this.bits.length;
      while (n <= word) n *= 2;
      const grown = new Uint32Array(n);
      grown.set(this.bits);
      this.bits = grown;
    }
    const mask = 1 << (seq & 31);
    if ((this.bits[word] & mask) !== 0) return false;
    this.bits[word] |= mask;
    this.unique++;
    return true;
  }

  /** The highest seq marked, or -1. */
  highest() {
    for (let w = this.bits.length - 1; w >= 0; w--) {
      const b = this.bits[w];
      if (b !== 0) return w * 32 + 31 - Math.clz32(b);
    }
    return -1;
  }

  /** ORs another bitset in; returns how many bits were already set in both. */
  orWith(bits) {
    if (bits.length > this.bits.length) {
      const grown = new Uint32Array(bits.length);
      grown.set(this.bits);
      this.bits = grown;
    }
    let overlap = 0;
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i];
      if (b === 0) continue;
      const both = this.bits[i] & b;
      if (both !== 0) overlap += popcount(both);
      const added = b & ~this.bits[i];
      if (added !== 0) this.unique += popcount(added);
      this.bits[i] |= b;
    }
    return overlap;
  }
}

function popcount(x) {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export class Verifier {
  constructor(size, pattern) {
    this.size = size;
    this.pattern = pattern;
    /** producer id → SeenSet */
    this.seen = [];
    this.received = 0;
    this.duplicates = 0;
    this.redelivered = 0;
    this.outOfOrder = 0;
    this.corrupt = 0;
    this.firstError = null;
  }

  /** A per-consumer order tracker: lastSeq[producerId]. */
  newOrderTracker() {
    return [];
  }

  /**
   * Verifies one body; returns its send time (ms) or NaN when the body is unreadable.
   * `order` is the consumer's tracker from newOrderTracker().
   */
  check(body, redelivered, order) {
    this.received++;
    if (body.length < HEADER_SIZE) {
      this.fail(`body of ${body.length} bytes, expected ${this.size}`);
      this.corrupt++;
      return NaN;
    }
    const producerId = body.readUInt32LE(0);
    const seq = body.readUInt32LE(4);
    if (!fillIntact(body, this.size, this.pattern, seq)) {
      this.corrupt++;
      this.fail(`producer ${producerId} seq ${seq}: body corrupt (length ${body.length})`);
    }
    let set = this.seen[producerId];
    if (set === undefined) set = this.seen[producerId] = new SeenSet();
    if (!set.add(seq)) {
      // A redelivery after a restart or requeue may legitimately repeat a message.
      if (redelivered) this.redelivered++;
      else {
        this.duplicates++;
        this.fail(`producer ${producerId} seq ${seq}: delivered twice`);
      }
    }
    const last = order[producerId];
    if (last !== undefined && seq <= last && !redelivered) {
      this.outOfOrder++;
      this.fail(`producer ${producerId}: seq ${seq} after ${last}`);
    }
    order[producerId] = seq;
    return body.readDoubleLE(8);
  }

  /** What a consumer thread sends back: plain data (typed arrays are structured-cloned). */
  exportState() {
    return {
      seen: this.seen.map((s) => (s === undefined ? null : s.bits)),
      received: this.received,
      duplicates: this.duplicates,
      redelivered: this.redelivered,
      outOfOrder: this.outOfOrder,
      corrupt: this.corrupt,
      firstError: this.firstError,
    };
  }

  /**
   * Merges a consumer thread's state into this verifier (consumers of one queue, each in
   * its own thread): a (producer, seq) seen by two consumers is a duplicate.
   */
  absorb(state) {
    this.received += state.received;
    this.duplicates += state.duplicates;
    this.redelivered += state.redelivered;
    this.outOfOrder += state.outOfOrder;
    this.corrupt += state.corrupt;
    if (state.firstError !== null) this.fail(state.firstError);
    for (let id = 0; id < state.seen.length; id++) {
      const bits = state.seen[id];
      if (bits === null || bits === undefined) continue;
      let set = this.seen[id];
      if (set === undefined) set = this.seen[id] = new SeenSet();
      const overlap = set.orWith(bits);
      if (overlap > 0) {
        this.duplicates += overlap;
        this.fail(`producer ${id}: ${overlap} message(s) delivered to two consumers`);
      }
    }
  }

  fail(message) {
    if (this.firstError === null) this.firstError = message;
  }

  /**
   * Final verdict given how many messages each producer had confirmed or published.
   * `left` (optional) is how many were still in the queue, never delivered, when the
   * consumers were cancelled (a run that stops before its consumers catch up). Those must
   * be exactly each producer's newest messages: what a producer got delivered must be its
   * messages 0..k-1 (a queue delivers oldest first), and the rest must add up to `left`.
   */
  result(publishedByProducer, left = 0) {
    let expected = 0;
    let missing = 0;
    let undelivered = 0;
    let gaps = 0;
    for (let id = 0; id < publishedByProducer.length; id++) {
      const n = publishedByProducer[id];
      expected += n;
      const set = this.seen[id];
      const got = set?.unique ?? 0;
      if (got < n) undelivered += n - got;
      if (left > 0 && set !== undefined && set.highest() !== got - 1) {
        gaps++;
        this.fail(`producer ${id}: ${got} delivered but not its first ${got} (highest seq ${set.highest()}) while ${left} were left in the queue`);
      }
    }
    if (left > 0) {
      missing = Math.max(0, undelivered - left);
      if (left > undelivered) this.fail(`${left} messages left in the queue but only ${undelivered} were never delivered`);
      if (missing > 0) this.fail(`${missing} of ${expected} messages neither delivered nor left in the queue`);
    } else {
      missing = undelivered;
      if (missing > 0) this.fail(`${missing} of ${expected} messages never delivered`);
    }
    const ok = missing === 0 && gaps === 0 && left <= undelivered && this.duplicates === 0 && this.outOfOrder === 0 && this.corrupt === 0;
    return {
      ok,
      expected,
      received: this.received,
      undelivered: left,
      missing,
      duplicates: this.duplicates,
      redelivered: this.redelivered,
      outOfOrder: this.outOfOrder,
      corrupt: this.corrupt,
      firstError: this.firstError,
    };
  }
}
