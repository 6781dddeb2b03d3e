import { ChannelCounters, ExchangeCounters, QueueCounters, VhostCounters, type RateState } from '../stats/counters.js';

/**
 * The stats tick: turns the plain counters that the broker increments where events
 * happen into what operators read, without any cost on the message path.
 *
 * - Channel counters are summed into per-vhost and broker-wide totals ("fold"). A
 *   channel is tracked from its opening until the first fold after it is gone, so a
 *   channel that lived less than a tick is still counted.
 * - Every tick, rates (per second, over the last tick) are computed for the totals and
 *   for every queue, exchange, channel and connection; the broker-wide rates are kept in
 *   a bounded history for the dashboard's charts.
 *
 * The sampler sees the model through the small structural interfaces below, so it
 * depends on no front end.
 */

export interface SampledQueue {
  readonly stats: QueueCounters;
  readonly messageCount: number;
  readonly unackedCount: number;
}
export interface SampledExchange {
  readonly stats: ExchangeCounters;
}
export interface SampledVhost {
  readonly name: string;
  readonly stats: VhostCounters;
  readonly queues: ReadonlyMap<string, SampledQueue>;
  readonly exchanges: ReadonlyMap<string, SampledExchange>;
}
export interface SampledChannel {
  readonly stats: ChannelCounters;
}
export interface SampledConnection {
  readonly stats: { recvOct: number; recvCnt: number; rates: RateState | null };
  readonly out: { readonly bytesWritten: number };
  /** '' until connection.open */
  readonly vhostName: string;
  readonly channels: ReadonlyMap<number, SampledChannel>;
}

/** Gauges whose rate of change RabbitMQ reports too (messages_details.rate, ...). */
const QUEUE_GAUGES = 3;
const QUEUE_RATE_FIELDS = QueueCounters.FIELDS.length + QUEUE_GAUGES;
const CH_FIELDS = ChannelCounters.FIELDS;

/** Totals for one vhost (or the whole broker): message counters plus socket bytes. */
export class Totals {
  readonly messages = new ChannelCounters();
  recvOct = 0;
  sendOct = 0;
  /** rates of recvOct, sendOct */
  octRates: RateState | null = null;
  /** ready / unacked / total messages in queues, summed at the last tick, and their rates */
  ready = 0;
  unacked = 0;
  queueRates: RateState | null = null;
}

interface TrackedChannel {
  readonly stats: ChannelCounters;
  readonly vhost: string;
  readonly isGone: () => boolean;
  /** counter values already added to the totals */
  readonly folded: Float64Array;
}

interface TrackedConnection {
  readonly conn: SampledConnection;
  foldedRecv: number;
  foldedSend: number;
}

/** One point of the broker-wide history (rates per second, queue depths). */
export interface HistoryPoint {
  /** ms since the epoch */
  readonly t: number;
  readonly publish: number;
  readonly deliver: number;
  readonly ack: number;
  readonly confirm: number;
  readonly get: number;
  readonly redeliver: number;
  readonly returnUnroutable: number;
  readonly ready: number;
  readonly unacked: number;
}

export interface SamplerSource {
  vhosts(): Iterable<SampledVhost>;
  connections(): Iterable<SampledConnection>;
}

/** Samples kept for the broker-wide history (at the default 1 s tick: 10 minutes). */
export const HISTORY_LENGTH = 600;

/** Broker lifetime counts of objects opened and closed (RabbitMQ's churn_rates). */
export class Churn {
  connectionCreated = 0;
  connectionClosed = 0;
  channelCreated = 0;
  channelClosed = 0;
  queueDeclared = 0;
  queueCreated = 0;
  queueDeleted = 0;
}

export class StatsSampler {
  readonly global = new Totals();
  readonly churn = new Churn();
  /** vhost queue churn already added to `churn` */
  private readonly vhostChurn = new Map<SampledVhost, VhostCounters>();
  readonly vhostTotals = new Map<string, Totals>();
  private readonly channels = new Set<TrackedChannel>();
  private readonly connections = new Set<TrackedConnection>();
  private readonly history: HistoryPoint[] = [];
  private lastTick = 0;
  /** ms between ticks (the rates' window) */
  readonly intervalMs: number;

  constructor(
    private readonly source: SamplerSource,
    intervalMs: number,
  ) {
    this.intervalMs = intervalMs;
  }

  totalsOf(vhost: string): Totals {
    let t = this.vhostTotals.get(vhost);
    if (t === undefined) {
      t = new Totals();
      this.vhostTotals.set(vhost, t);
    }
    return t;
  }

  /** A vhost was deleted: its totals go (the broker-wide ones keep what it counted). */
  forgetVhost(vhost: string): void {
    this.vhostTotals.delete(vhost);
  }

  /** Follows a channel's counters until the first fold after `isGone()` turns true. */
  trackChannel(stats: ChannelCounters, vhost: string, isGone: () => boolean): void {
    this.channels.add({ stats, vhost, isGone, folded: new Float64Array(CH_FIELDS.length) });
    this.churn.channelCreated++;
  }

  trackConnection(conn: SampledConnection): void {
    this.connections.add({ conn, foldedRecv: 0, foldedSend: 0 });
    this.churn.connectionCreated++;
  }

  /** A connection is gone: its last bytes are counted now. */
  connectionClosed(conn: SampledConnection): void {
    for (const t of this.connections) {
      if (t.conn === conn) {
        this.foldConnection(t);
        this.connections.delete(t);
        this.churn.connectionClosed++;
        return;
      }
    }
  }

  /** Adds what every channel and connection counted since the last fold to the totals. */
  fold(): void {
    const global = this.global.messages as unknown as Record<string, number>;
    for (const t of this.channels) {
      const stats = t.stats as unknown as Record<string, number>;
      const totals = this.totalsOf(t.vhost).messages as unknown as Record<string, number>;
      const folded = t.folded;
      for (let i = 0; i < CH_FIELDS.length; i++) {
        const f = CH_FIELDS[i]!;
        const v = stats[f]!;
        const d = v - folded[i]!;
        if (d !== 0) {
          totals[f]! += d;
          global[f]! += d;
          folded[i] = v;
        }
      }
      if (t.isGone()) {
        this.channels.delete(t);
        this.churn.channelClosed++;
      }
    }
    for (const t of this.connections) this.foldConnection(t);
    this.foldVhosts();
  }

  /** Queue churn of every vhost (a deleted vhost's last counts are kept). */
  private foldVhosts(): void {
    const seen = new Set<SampledVhost>();
    for (const v of this.source.vhosts()) {
      seen.add(v);
      let folded = this.vhostChurn.get(v);
      if (folded === undefined) {
        folded = new VhostCounters();
        this.vhostChurn.set(v, folded);
      }
      this.foldChurn(v.stats, folded);
    }
    for (const [v, folded] of this.vhostChurn) {
      if (seen.has(v)) continue;
      this.foldChurn(v.stats, folded);
      this.vhostChurn.delete(v);
    }
  }

  private foldChurn(s: VhostCounters, folded: VhostCounters): void {
    this.churn.queueDeclared += s.queueDeclared - folded.queueDeclared;
    this.churn.queueCreated += s.queueCreated - folded.queueCreated;
    this.churn.queueDeleted += s.queueDeleted - folded.queueDeleted;
    folded.queueDeclared = s.queueDeclared;
    folded.queueCreated = s.queueCreated;
    folded.queueDeleted = s.queueDeleted;
  }

  private foldConnection(t: TrackedConnection): void {
    const c = t.conn;
    if (c.vhostName === '') return; // not open yet: counted from connection.open's vhost on
    const recv = c.stats.recvOct - t.foldedRecv;
    const send = c.out.bytesWritten - t.foldedSend;
    if (recv === 0 && send === 0) return;
    const totals = this.totalsOf(c.vhostName);
    totals.recvOct += recv;
    totals.sendOct += send;
    this.global.recvOct += recv;
    this.global.sendOct += send;
    t.foldedRecv = c.stats.recvOct;
    t.foldedSend = c.out.bytesWritten;
  }

  /** The stats tick: fold, then rates for every object, then one history point. */
  tick(now = Date.now()): void {
    this.fold();
    const dt = this.lastTick === 0 ? 0 : (now - this.lastTick) / 1000;
    this.lastTick = now;
    let ready = 0;
    let unacked = 0;
    for (const v of this.source.vhosts()) {
      let vReady = 0;
      let vUnacked = 0;
      for (const q of v.queues.values()) {
        const s = q.stats as unknown as Record<string, number>;
        const state = (q.stats.rates ??= newRates(QUEUE_RATE_FIELDS, QueueCounters.FIELDS.length));
        const n = QueueCounters.FIELDS.length;
        for (let i = 0; i < n; i++) sample(state, i, s[QueueCounters.FIELDS[i]!]!, dt);
        const qReady = q.messageCount;
        const qUnacked = q.unackedCount;
        sampleSigned(state, n, qReady + qUnacked, dt);
        sampleSigned(state, n + 1, qReady, dt);
        sampleSigned(state, n + 2, qUnacked, dt);
        vReady += qReady;
        vUnacked += qUnacked;
      }
      for (const x of v.exchanges.values()) {
        const s = x.stats;
        if (s.publishIn === 0 && s.rates === null) continue; // never used: no rates to keep
        const state = (s.rates ??= newRates(ExchangeCounters.FIELDS.length));
        sample(state, 0, s.publishIn, dt);
        sample(state, 1, s.publishOut, dt);
      }
      const totals = this.totalsOf(v.name);
      totals.ready = vReady;
      totals.unacked = vUnacked;
      ready += vReady;
      unacked += vUnacked;
    }
    this.global.ready = ready;
    this.global.unacked = unacked;
    for (const totals of this.vhostTotals.values()) sampleTotals(totals, dt);
    sampleTotals(this.global, dt);
    for (const t of this.channels) sampleChannel(t.stats, dt);
    for (const t of this.connections) {
      const s = t.conn.stats;
      const state = (s.rates ??= newRates(2));
      sample(state, 0, s.recvOct, dt);
      sample(state, 1, t.conn.out.bytesWritten, dt);
    }
    if (dt > 0) this.record(now);
  }

  private record(now: number): void {
    const r = this.global.messages.rates!.rate;
    const at = (f: (typeof CH_FIELDS)[number]) => r[CH_FIELDS.indexOf(f)]!;
    this.history.push({
      t: now,
      publish: at('publish'),
      deliver: at('deliver') + at('deliverNoAck'),
      ack: at('ack'),
      confirm: at('confirm'),
      get: at('get') + at('getNoAck'),
      redeliver: at('redeliver'),
      returnUnroutable: at('returnUnroutable'),
      ready: this.global.ready,
      unacked: this.global.unacked,
    });
    if (this.history.length > HISTORY_LENGTH) this.history.splice(0, this.history.length - HISTORY_LENGTH);
  }

  /** Broker-wide history, oldest first; `sinceMs`: only points newer than that. */
  historySince(sinceMs = 0): readonly HistoryPoint[] {
    if (sinceMs === 0) return this.history.slice();
    return this.history.filter((p) => p.t > sinceMs);
  }
}

/**
 * Rate state for n fields. Counters start at 0 when their object is created, so their
 * first reading already has a rate; gauges (from `gaugesFrom` on) have none until read twice.
 */
function newRates(n: number, gaugesFrom = n): RateState {
  return { last: new Float64Array(n).fill(NaN, gaugesFrom), rate: new Float64Array(n) };
}

/** The rate of one field over the last tick (0 on a gauge's first reading). */
function sample(state: RateState, i: number, value: number, dt: number): void {
  const last = state.last[i]!;
  (state.rate as Float64Array)[i] = dt > 0 && !Number.isNaN(last) ? Math.max(0, value - last) / dt : 0;
  (state.last as Float64Array)[i] = value;
}

/** For gauges (queue depths) a negative rate is meaningful. */
function sampleSigned(state: RateState, i: number, value: number, dt: number): void {
  const last = state.last[i]!;
  (state.rate as Float64Array)[i] = dt > 0 && !Number.isNaN(last) ? (value - last) / dt : 0;
  (state.last as Float64Array)[i] = value;
}

function sampleChannel(stats: ChannelCounters, dt: number): void {
  const s = stats as unknown as Record<string, number>;
  const state = (stats.rates ??= newRates(CH_FIELDS.length));
  for (let i = 0; i < CH_FIELDS.length; i++) sample(state, i, s[CH_FIELDS[i]!]!, dt);
}

function sampleTotals(t: Totals, dt: number): void {
  sampleChannel(t.messages, dt);
  const oct = (t.octRates ??= newRates(2));
  sample(oct, 0, t.recvOct, dt);
  sample(oct, 1, t.sendOct, dt);
  const q = (t.queueRates ??= newRates(3, 0));
  sampleSigned(q, 0, t.ready + t.unacked, dt);
  sampleSigned(q, 1, t.ready, dt);
  sampleSigned(q, 2, t.unacked, dt);
}
