import { connect, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PENDING_LIMIT, PENDING_MAX_AGE_MS, RpcTracker } from '../../src/stats/rpc.js';
import { eventually, startHttpBroker, type HttpBroker } from './helpers.js';

describe('RPC view: request and reply rates and latency per request queue', () => {
  let h: HttpBroker;
  let conn: ChannelModel;

  beforeAll(async () => {
    h = await startHttpBroker();
    conn = await connect(h.broker.url);
    // a server that answers every request after 20 ms
    const server = await conn.createChannel();
    await server.assertQueue('rpc-requests', { durable: false });
    await server.consume('rpc-requests', (m) => {
      if (m === null) return;
      setTimeout(() => {
        server.sendToQueue(m.properties.replyTo as string, Buffer.from('pong'), { correlationId: m.properties.correlationId as string });
        server.ack(m);
      }, 20);
    });
  });
  afterAll(async () => {
    await conn.close();
    await h.close();
  });

  it('matches replies to requests through a reply queue and through direct reply-to', async () => {
    const client = await conn.createChannel();
    const { queue: replyQueue } = await client.assertQueue('', { exclusive: true });
    const replies = new Map<string, () => void>();
    await client.consume(replyQueue, (m) => m && replies.get(m.properties.correlationId as string)?.(), { noAck: true });
    const direct = await conn.createChannel();
    await direct.consume('amq.rabbitmq.reply-to', (m) => m && replies.get(m.properties.correlationId as string)?.(), { noAck: true });
    const call = (ch: typeof client, replyTo: string, id: string) =>
      new Promise<void>((resolve) => {
        replies.set(id, resolve);
        ch.sendToQueue('rpc-requests', Buffer.from('ping'), { replyTo, correlationId: id });
      });
    for (let i = 0; i < 5; i++) await call(client, replyQueue, `q-${i}`);
    for (let i = 0; i < 5; i++) await call(direct, 'amq.rabbitmq.reply-to', `d-${i}`);
    // a message with a correlation id that answers nothing, and a request nobody answers
    client.sendToQueue(replyQueue, Buffer.from('stray'), { correlationId: 'unknown' });

    const row = await eventually(async () => {
      const list = (await h.api('/warren/rpc')).body as Array<Record<string, unknown>>;
      const r = list.find((x) => x.name === 'rpc-requests');
      expect(r).toMatchObject({ vhost: '/', requests: 10, replies: 10, unanswered: 0 });
      return r!;
    });
    const latency = row.latency_ms as { p50: number; p90: number; p99: number; max: number; samples: number };
    expect(latency.samples).toBe(10);
    expect(latency.p50).toBeGreaterThanOrEqual(15);
    expect(latency.p99).toBeGreaterThanOrEqual(latency.p50);
    expect(latency.max).toBeGreaterThanOrEqual(latency.p99);
    expect(row.requests_details).toEqual({ rate: expect.any(Number) });
  });
});

describe('RpcTracker', () => {
  it('keeps the table bounded, counting what it drops as unanswered', () => {
    const t = new RpcTracker();
    for (let i = 0; i < PENDING_LIMIT + 10; i++) t.request('/', 'q', 'reply', String(i), 1000);
    expect(t.pendingCount).toBe(PENDING_LIMIT);
    t.reply('/', 'reply', '0', 2000); // pushed out: no match
    t.reply('/', 'reply', String(PENDING_LIMIT + 9), 1500);
    const [s] = t.list();
    expect(s).toMatchObject({ requests: PENDING_LIMIT + 10, replies: 1, unanswered: 10 });
    expect(s!.latency()).toEqual({ p50: 500, p90: 500, p99: 500, max: 500, samples: 1 });
  });

  it('drops requests unanswered for too long on the tick, and matches by reply-to and correlation id', () => {
    const t = new RpcTracker();
    t.request('/', 'q', 'r1', 'a', 0);
    t.request('/', 'q', 'r2', 'a', 0);
    t.tick(1);
    t.reply('/', 'r2', 'a', 30);
    t.tick(PENDING_MAX_AGE_MS + 1);
    expect(t.pendingCount).toBe(0);
    expect(t.list()[0]).toMatchObject({ requests: 2, replies: 1, unanswered: 1 });
    t.reply('/', 'r1', 'a', PENDING_MAX_AGE_MS + 2);
    expect(t.list()[0]!.replies).toBe(1);
  });
});
