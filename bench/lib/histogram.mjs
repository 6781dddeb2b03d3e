// A log-linear histogram of latencies in microseconds (like HdrHistogram with 7 bits of
// sub-bucket precision: every value is recorded within 0.8 %), fixed size, no allocation
// per record, mergeable.

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128
const LINEAR = SUB * 2; // values below 256 µs are exact
const MAX_VALUE = 0x7fffffff; // ~35 minutes in µs
const BUCKETS = LINEAR + (31 - SUB_BITS - 1) * SUB;

function indexOf(us) {
  let v = us <= 0 ? 0 : us >= MAX_VALUE ? MAX_VALUE : Math.floor(us);
  if (v < LINEAR) return v;
  const shift = 31 - Math.clz32(v) - SUB_BITS;
  return LINEAR + (shift - 1) * SUB + ((v >>> shift) - SUB);
}

/** Representative value (bucket midpoint) of index `i`, in µs. */
function valueOf(i) {
  if (i < LINEAR) return i;
  const shift = Math.floor((i - LINEAR) / SUB) + 1;
  const m = ((i - LINEAR) % SUB) + SUB;
  return (m + 0.5) * 2 ** shift;
}

export class Histogram {
  constructor() {
    this.counts = new Float64Array(BUCKETS);
    this.total = 0;
    this.max = 0;
    this.sum = 0;
  }

  /** Records one latency given in milliseconds. */
  recordMs(ms) {
    const us = ms * 1000;
    this.counts[indexOf(us)]++;
    this.total++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  merge(other) {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i];
    this.total += other.total;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  /** The q-quantile (0..1) in milliseconds, null when empty. */
  quantileMs(q) {
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(valueOf(i), this.max) / 1000;
    }
    return this.max / 1000;
  }

  summary() {
    if (this.total === 0) return null;
    return {
      samples: this.total,
      meanMs: round3(this.sum / this.total / 1000),
      p50Ms: round3(this.quantileMs(0.5)),
      p99Ms: round3(this.quantileMs(0.99)),
      p999Ms: round3(this.quantileMs(0.999)),
      maxMs: round3(this.max / 1000),
    };
  }
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}
