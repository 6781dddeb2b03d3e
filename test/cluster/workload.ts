import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';

export const QUEUE = 'ha-workload';
const WINDOW = 200;
/**
 * 1 KiB of random bytes, new for each message: users' bodies rarely compress, and LevelDB
 * compresses its tables (a repeated body made a 100k backlog 10 MB of tables instead of 110)
 */
const body = (): Buffer => randomBytes(1024);

export interface Delivery {
  readonly id: string;
  readonly redelivered: boolean;
  /** which consumer connection (a counter) received it */
  readonly conn: number;
  readonly at: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** amqplib has no handshake timeout: a paused leader behind a proxy would hang connect() */
async function connectWithin(url: string, ms: number): Promise<amqp.ChannelModel> {
  const pending = amqp.connect(url);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error('connect timeout'));
      void pending.then((c) => c.close().catch(() => {}), () => {});
    }, ms);
  });
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * amqplib's close() settles only when connection.close-ok arrives: when the socket closes
 * first (the node died, or a proxy in between dropped it), it never does. Done at the
 * connection's 'close' event too.
 */
async function closeQuietly(conn: amqp.ChannelModel | null): Promise<void> {
  if (conn === null) return;
  const gone = new Promise<void>((resolve) => conn.once('close', () => resolve()));
  await Promise.race([conn.close().catch(() => {}), gone]);
}

/**
 * A confirmed persistent workload whose clients reconnect (to the next node in the list)
 * whenever their connection drops, as applications do against a cluster: one publisher
 * (confirm channel, 1 KiB persistent messages with ids, at most WINDOW unconfirmed) and
 * one consumer (manual acks, prefetch 100).
 */
export class Workload {
  readonly confirmed = new Map<string, { publishedAt: number; confirmedAt: number }>();
  readonly deliveries: Delivery[] = [];
  private running = false;
  /** the consumer stays away (a backlog builds up) while this is set */
  consumerPaused = false;
  private seq = 0;
  private consumerConns = 0;
  private loops: Promise<void>[] = [];
  /** wall-clock ms at which the publisher's confirm channel was ready, per connection */
  readonly publisherReady: number[] = [];
  /** where the publisher loop is (for a stop that hangs) */
  publisherAt = '';

  constructor(
    private readonly urls: readonly string[],
    private readonly ratePerSecond = 500,
  ) {}

  start(): void {
    this.running = true;
    this.loops = [this.publisherLoop(), this.consumerLoop()];
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** wall-clock time of the first confirm of a message published after `t` */
  firstConfirmAfter(t: number): number | null {
    let best: number | null = null;
    for (const c of this.confirmed.values()) if (c.publishedAt > t && (best === null || c.confirmedAt < best)) best = c.confirmedAt;
    return best;
  }

  async waitConfirmed(n: number, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    const target = this.confirmed.size + n;
    while (this.confirmed.size < target) {
      if (Date.now() > end) throw new Error(`only ${this.confirmed.size} of ${target} messages confirmed in time`);
      await sleep(20);
    }
  }

  private url(i: number): string {
    return `${this.urls[i % this.urls.length]}?heartbeat=1`;
  }

  private async publisherLoop(): Promise<void> {
    for (let attempt = 0; this.running; attempt++) {
      let conn: amqp.ChannelModel | null = null;
      try {
        this.publisherAt = `connect ${this.url(attempt)}`;
        conn = await connectWithin(this.url(attempt), 3000);
        let closed = false;
        conn.on('error', () => {});
        conn.on('close', () => (closed = true));
        this.publisherAt = 'channel';
        const ch = await conn.createConfirmChannel();
        ch.on('error', () => {});
        this.publisherAt = 'assertQueue';
        await ch.assertQueue(QUEUE, { durable: true });
        this.publisherAt = 'publishing';
        this.publisherReady.push(Date.now());
        let inflight = 0;
        const perTick = Math.max(1, Math.round(this.ratePerSecond / 50));
        while (this.running && !closed) {
          for (let k = 0; k < perTick && inflight < WINDOW && !closed; k++) {
            const id = `m${++this.seq}`;
            const publishedAt = Date.now();
            inflight++;
            ch.publish('', QUEUE, body(), { persistent: true, messageId: id }, (err) => {
              inflight--;
              if (err === null || err === undefined) this.confirmed.set(id, { publishedAt, confirmedAt: Date.now() });
            });
          }
          await sleep(20);
        }
        this.publisherAt = `waitForConfirms (closed ${closed})`;
        if (!closed) await ch.waitForConfirms().catch(() => {});
        this.publisherAt = 'closing';
      } catch {
        // the node went away or refused us: try the next one
      } finally {
        await closeQuietly(conn);
      }
      if (this.running) await sleep(200);
    }
  }

  private async consumerLoop(): Promise<void> {
    for (let attempt = 1; this.running; attempt++) {
      if (this.consumerPaused) {
        await sleep(100);
        continue;
      }
      let conn: amqp.ChannelModel | null = null;
      try {
        conn = await connectWithin(this.url(attempt), 3000);
        const connNo = ++this.consumerConns;
        let closed = false;
        conn.on('error', () => {});
        const closedP = new Promise<void>((r) => conn!.on('close', () => ((closed = true), r())));
        const ch = await conn.createChannel();
        ch.on('error', () => {});
        await ch.assertQueue(QUEUE, { durable: true });
        await ch.prefetch(100);
        await ch.consume(QUEUE, (m) => {
          if (m === null) return;
          this.deliveries.push({ id: String(m.properties.messageId), redelivered: m.fields.redelivered, conn: connNo, at: Date.now() });
          ch.ack(m);
        });
        while (this.running && !closed && !this.consumerPaused) await Promise.race([closedP, sleep(100)]);
      } catch {
        // try the next node
      } finally {
        await closeQuietly(conn);
      }
      if (this.running) await sleep(200);
    }
  }

  /** publishes n messages as fast as confirms allow (a backlog for failover timing) */
  async bulkPublish(n: number): Promise<void> {
    let done = 0;
    for (let attempt = 0; done < n; attempt++) {
      let conn: amqp.ChannelModel | null = null;
      try {
        conn = await connectWithin(this.url(attempt), 3000);
        conn.on('error', () => {});
        const ch = await conn.createConfirmChannel();
        ch.on('error', () => {});
        await ch.assertQueue(QUEUE, { durable: true });
        while (done < n) {
          const batch = Math.min(1000, n - done);
          const ids: string[] = [];
          const publishedAt = Date.now();
          for (let k = 0; k < batch; k++) {
            const id = `b${++this.seq}`;
            ids.push(id);
            ch.publish('', QUEUE, body(), { persistent: true, messageId: id });
          }
          await ch.waitForConfirms();
          const confirmedAt = Date.now();
          for (const id of ids) this.confirmed.set(id, { publishedAt, confirmedAt });
          done += batch;
        }
      } catch {
        await sleep(300);
      } finally {
        await closeQuietly(conn);
      }
    }
  }

  /** the longest time between two consecutive confirms within [from, to] */
  longestConfirmGap(from: number, to: number): number {
    const times = [...this.confirmed.values()].map((c) => c.confirmedAt).filter((t) => t >= from && t <= to).sort((a, b) => a - b);
    let gap = 0;
    let prev = from;
    for (const t of times) {
      gap = Math.max(gap, t - prev);
      prev = t;
    }
    return Math.max(gap, to - prev);
  }

  /** consumes whatever is left (through any node), until the queue reports empty and nothing arrives */
  async drain(timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (let attempt = 0; Date.now() < end; attempt++) {
      let conn: amqp.ChannelModel | null = null;
      try {
        conn = await connectWithin(this.url(attempt), 3000);
        conn.on('error', () => {});
        let closed = false;
        conn.on('close', () => (closed = true));
        const connNo = ++this.consumerConns;
        const ch = await conn.createChannel();
        ch.on('error', () => {});
        await ch.assertQueue(QUEUE, { durable: true });
        await ch.prefetch(1000);
        let lastAt = Date.now();
        await ch.consume(QUEUE, (m) => {
          if (m === null) return;
          lastAt = Date.now();
          this.deliveries.push({ id: String(m.properties.messageId), redelivered: m.fields.redelivered, conn: connNo, at: lastAt });
          ch.ack(m);
        });
        for (;;) {
          await sleep(200);
          if (closed) throw new Error('connection lost while draining');
          if (Date.now() - lastAt < 500) continue;
          const { messageCount } = await ch.checkQueue(QUEUE);
          if (messageCount === 0 && Date.now() - lastAt >= 500) {
            await ch.close();
            return;
          }
          if (Date.now() > end) break;
        }
      } catch {
        await sleep(300);
      } finally {
        await closeQuietly(conn);
      }
    }
    throw new Error('could not drain the queue');
  }

  /** confirmed messages never delivered */
  missing(): string[] {
    const seen = new Set(this.deliveries.map((d) => d.id));
    return [...this.confirmed.keys()].filter((id) => !seen.has(id));
  }

  /**
   * Deliveries that repeat a message on the same connection without `redelivered` (a
   * message delivered again after a reconnect may lack the flag when the mark of its first
   * delivery never became durable: a limit of the store's delivery mark, see the docs).
   */
  badDuplicates(): Delivery[] {
    const byId = new Map<string, Delivery[]>();
    for (const d of this.deliveries) {
      const list = byId.get(d.id) ?? [];
      list.push(d);
      byId.set(d.id, list);
    }
    const bad: Delivery[] = [];
    for (const list of byId.values()) {
      for (let i = 1; i < list.length; i++) {
        const d = list[i]!;
        if (!d.redelivered && list.slice(0, i).some((p) => p.conn === d.conn)) bad.push(d);
      }
    }
    return bad;
  }
}
