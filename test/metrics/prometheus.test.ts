import { spawnSync } from 'node:child_process';
import { connect, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startHttpBroker, type HttpBroker } from '../management/helpers.js';

/** Parses the text format into name{labels} → value (comments skipped). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe('Prometheus metrics', () => {
  let h: HttpBroker;
  let conn: ChannelModel;

  beforeAll(async () => {
    h = await startHttpBroker();
    conn = await connect(h.broker.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('metrics-q', { durable: false });
    for (let i = 0; i < 7; i++) ch.sendToQueue('metrics-q', Buffer.from('x'));
    await ch.waitForConfirms();
    const got = await ch.get('metrics-q', { noAck: false });
    if (got !== false) ch.ack(got);
  });
  afterAll(async () => {
    await conn.close();
    await h.close();
  });

  const scrape = async (path: string) => {
    const res = await fetch(`${h.metrics}${path}`);
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  };

  it('serves /metrics without auth in text format 0.0.4 with RabbitMQ names', async () => {
    const r = await scrape('/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toBe('text/plain; version=0.0.4');
    const s = samples(r.text);
    expect(s.get('rabbitmq_queue_messages_ready')).toBe(6);
    expect(s.get('rabbitmq_queue_messages')).toBe(6);
    expect(s.get('rabbitmq_queues')).toBe(1);
    expect(s.get('rabbitmq_connections')).toBe(1);
    expect(s.get('rabbitmq_channels')).toBe(1);
    expect(s.get('rabbitmq_channel_messages_published_total')).toBe(7);
    expect(s.get('rabbitmq_channel_messages_confirmed_total')).toBe(7);
    expect(s.get('rabbitmq_channel_get_ack_total')).toBe(1);
    expect(s.get('rabbitmq_channel_messages_acked_total')).toBe(1);
    expect(s.get('rabbitmq_global_messages_received_total{protocol="amqp091"}')).toBe(7);
    expect(s.get('rabbitmq_global_messages_received_confirm_total{protocol="amqp091"}')).toBe(7);
    expect(s.get('rabbitmq_global_messages_routed_total{protocol="amqp091"}')).toBe(7);
    expect(s.get('rabbitmq_global_messages_confirmed_total{protocol="amqp091"}')).toBe(7);
    expect(s.get('rabbitmq_global_messages_delivered_get_manual_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}')).toBe(1);
    expect(s.get('rabbitmq_global_messages_delivered_total{protocol="amqp091",queue_type="rabbit_classic_queue"}')).toBe(1);
    expect(s.get('rabbitmq_global_messages_acknowledged_total{protocol="amqp091",queue_type="rabbit_classic_queue"}')).toBe(1);
    expect(s.get('rabbitmq_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(s.get('rabbitmq_queues_created_total')).toBe(1);
    expect(s.get('rabbitmq_connections_opened_total')).toBe(1);
    // every panel of the RabbitMQ-Overview dashboard joins on rabbitmq_identity_info
    const identity = [...s.keys()].find((k) => k.startsWith('rabbitmq_identity_info{'));
    expect(identity).toMatch(/rabbitmq_node="rabbit@[^"]+"/);
    expect(identity).toMatch(/rabbitmq_cluster="[^"]+"/);
    expect([...s.keys()].some((k) => k.startsWith('rabbitmq_build_info{'))).toBe(true);
    // aggregated: no per-queue labels
    expect([...s.keys()].some((k) => k.includes('queue="metrics-q"'))).toBe(false);
    // Warren's own
    expect(s.has('warren_store_size_bytes')).toBe(true);
    expect(s.get('warren_messages_paged_out')).toBe(0);
    expect(s.get('warren_connections_blocked')).toBe(0);
  });

  it('labels queues with vhost and queue on /metrics/per-object', async () => {
    const s = samples((await scrape('/metrics/per-object')).text);
    expect(s.get('rabbitmq_queue_messages_ready{vhost="/",queue="metrics-q"}')).toBe(6);
    expect(s.get('rabbitmq_queue_messages_published_total{vhost="/",queue="metrics-q"}')).toBe(7);
    expect([...s.keys()].some((k) => k.startsWith('rabbitmq_channel_messages_published_total{channel='))).toBe(true);
  });

  it('keeps the broker-wide counters when a channel closes (they never go down)', async () => {
    const ch = await conn.createChannel();
    ch.sendToQueue('metrics-q', Buffer.from('y'));
    await ch.close();
    await eventually(async () => {
      const s = samples((await scrape('/metrics')).text);
      expect(s.get('rabbitmq_global_messages_received_total{protocol="amqp091"}')).toBe(8);
      expect(s.get('rabbitmq_channels_closed_total')).toBe(1);
    });
  });

  it('parses with promtool check metrics (Debian prometheus; .ci/run installs it) : exit 0, or 3 for lint findings only, as RabbitMQ', async () => {
    for (const path of ['/metrics', '/metrics/per-object']) {
      const { text } = await scrape(path);
      const res = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect([path, res.status, res.status === 0 || res.status === 3 ? '' : res.stderr + res.stdout]).toEqual([path, res.status === 3 ? 3 : 0, '']);
    }
  });

  it('answers 404 on other paths', async () => {
    expect((await scrape('/nope')).status).toBe(404);
  });
});
