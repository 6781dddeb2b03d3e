/**
 * The RPC view: for request/reply traffic (a request carries reply_to and
 * correlation_id; its reply is published to the default exchange with the request's
 * reply_to as routing key and the same correlation_id), per request queue: how many
 * requests and replies, and how long the broker saw between a request's publish and its
 * reply's publish. Requests wait for their reply in a bounded table: when it is full the
 * oldest is dropped, and requests older than PENDING_MAX_AGE_MS are dropped on the tick
 * (counted as unanswered).
 *
 * The message path calls in only for messages that have a correlation_id (a flag test);
 * everything else costs nothing.
 */

/** Requests waiting for their reply, at most. */
export const PENDING_LIMIT = 100_000;
/** A request unanswered for this long is dropped from the table. */
export const PENDING_MAX_AGE_MS = 10 * 60 * 1000;
/** Latencies kept per request queue for the percentiles (the most recent ones). */
export const LATENCY_SAMPLES = 1024;
/** Request queues followed at most (beyond, new ones are not tracked). */
export const QUEUE_LIMIT = 10_000;

interface Pending {
  readonly stats: RpcQueueStats;
  readonly at: number;
}

export class RpcQueueStats {
  requests = 0;
  replies = 0;
  /** requests dropped unanswered (too old, or pushed out of the full table) */
  unanswered = 0;
  /** per second over the last tick */
  requestRate = 0;
  replyRate = 0;
  private lastRequests = 0;
  private lastReplies = 0;
  /** the last LATENCY_SAMPLES latencies in ms, a ring */
  private readonly latencies = new Float64Array(LATENCY_SAMPLES);
  private samples = 0;

  constructor(
    readonly vhost: string,
    readonly queue: string,
  ) {}

  addLatency(ms: number): void {
    this.latencies[this.samples % LATENCY_SAMPLES] = ms;
    this.samples++;
  }

  tick(dt: number): void {
    if (dt > 0) {
      this.requestRate = (this.requests - this.lastRequests) / dt;
      this.replyRate = (this.replies - this.lastReplies) / dt;
    }
    this.lastRequests = this.requests;
    this.lastReplies = this.replies;
  }

  /** Percentiles (ms) over the kept latencies; null when no reply was seen yet. */
  latency(): { p50: number; p90: number; p99: number; max: number; samples: number } | null {
    const n = Math.min(this.samples, LATENCY_SAMPLES);
    if (n === 0) return null;
    const sorted = Float64Array.from(this.latencies.subarray(0, n)).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]!;
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[n - 1]!, samples: n };
  }
}

export class RpcTracker {
  /** `${vhost}\0${replyTo}\0${correlationId}` → the waiting request */
  private readonly pending = new Map<string, Pending>();
  /** `${vhost}\0${queue}` → stats */
  private readonly queues = new Map<string, RpcQueueStats>();
  private lastTick = 0;

  /** A request (reply_to and correlation_id set) routed to `queue`. */
  request(vhost: string, queue: string, replyTo: string, correlationId: string, now: number): void {
    const stats = this.statsOf(vhost, queue);
    if (stats === null) return;
    stats.requests++;
    const key = `${vhost}\0${replyTo}\0${correlationId}`;
    this.pending.delete(key); // a repeated id restarts its clock (and keeps insertion order by age)
    if (this.pending.size >= PENDING_LIMIT) {
      const oldest = this.pending.entries().next().value as [string, Pending];
      this.pending.delete(oldest[0]);
      oldest[1].stats.unanswered++;
    }
    this.pending.set(key, { stats, at: now });
  }

  /** A message with a correlation_id published to the default exchange with `routingKey`: maybe a reply. */
  reply(vhost: string, routingKey: string, correlationId: string, now: number): void {
    const key = `${vhost}\0${routingKey}\0${correlationId}`;
    const p = this.pending.get(key);
    if (p === undefined) return;
    this.pending.delete(key);
    p.stats.replies++;
    p.stats.addLatency(now - p.at);
  }

  /** The stats tick: rates, and requests that waited too long leave the table. */
  tick(now: number): void {
    const dt = this.lastTick === 0 ? 0 : (now - this.lastTick) / 1000;
    this.lastTick = now;
    for (const s of this.queues.values()) s.tick(dt);
    for (const [key, p] of this.pending) {
      if (now - p.at < PENDING_MAX_AGE_MS) break; // oldest first
      this.pending.delete(key);
      p.stats.unanswered++;
    }
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  list(): RpcQueueStats[] {
    return [...this.queues.values()];
  }

  /** A vhost is gone: forget its request queues. */
  forgetVhost(vhost: string): void {
    for (const [k, s] of this.queues) if (s.vhost === vhost) this.queues.delete(k);
  }

  private statsOf(vhost: string, queue: string): RpcQueueStats | null {
    const key = `${vhost}\0${queue}`;
    let s = this.queues.get(key);
    if (s === undefined) {
      if (this.queues.size >= QUEUE_LIMIT) return null;
      s = new RpcQueueStats(vhost, queue);
      this.queues.set(key, s);
    }
    return s;
  }
}
