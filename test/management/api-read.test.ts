import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { connect, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, eventually, startHttpBroker, type HttpBroker } from './helpers.js';

const shapes = JSON.parse(readFileSync(new URL('../fixtures/rabbitmq-3.10-api-shapes.json', import.meta.url), 'utf8')) as Record<string, string[]>;

/**
 * Keys RabbitMQ reports that Warren deliberately leaves out (docs/differences.md): Erlang
 * process internals and features Warren does not have (mirroring, quorum queues, OAuth).
 */
const NOT_REPORTED = [
  /(^|\.)reductions(_details)?(\.|$)/,
  /(^|\.)garbage_collection(\.|$)/,
  /^backing_queue_status/,
  /^(idle_since|recoverable_slaves|consumer_capacity|consumer_utilisation|messages_persistent|message_bytes_persistent|message_bytes_unacknowledged)$/,
  /^(statistics_db_event_queue|release_series_support_status)$/,
  /^(io_|mnesia_|msg_store_|queue_index_|gc_|context_switches|metrics_gc_queue_length|ra_open_file_metrics|fd_used_details|mem_used_details|proc_used_details|sockets_used_details|disk_free_details)/,
  /^sample_retention_policies\.(detailed|basic|global)$/,
  /^message_stats\.disk_(reads|writes)/,
];

function keyPaths(o: unknown, prefix = ''): string[] {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    out.push(prefix + k);
    if (!['arguments', 'client_properties', 'capabilities', 'cluster_state', 'effective_policy_definition', 'exchange_types'].includes(k)) {
      out.push(...keyPaths(v, `${prefix}${k}.`));
    }
  }
  return out;
}

function missingKeys(kind: string, warren: unknown): string[] {
  const have = new Set(keyPaths(warren));
  return shapes[kind]!.filter((k) => !have.has(k) && !NOT_REPORTED.some((re) => re.test(k)));
}

describe('management API: reading the broker', () => {
  let h: HttpBroker;
  let conn: ChannelModel;

  beforeAll(async () => {
    h = await startHttpBroker();
    conn = await connect(h.broker.url);
  });
  afterAll(async () => {
    await conn.close().catch(() => {});
    await h.close();
  });

  describe('authentication', () => {
    it('answers a request without credentials with an empty 401 and the realm challenge', async () => {
      const r = await h.api('/overview', { auth: null });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Basic realm="RabbitMQ Management"');
      expect(r.text).toBe('');
    });

    it('answers bad credentials with 401, the challenge and RabbitMQ body', async () => {
      const r = await h.api('/queues', { auth: basic('guest', 'wrong') });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Basic realm="RabbitMQ Management"');
      expect(r.body).toEqual({ error: 'not_authorized', reason: 'Login failed' });
      const unknown = await h.api('/queues', { auth: basic('nobody', 'x') });
      expect(unknown.status).toBe(401);
      expect(unknown.headers.get('www-authenticate')).toBe('Basic realm="RabbitMQ Management"');
      // the dashboard marks its requests: a browser must not pop up its own login dialog
      const fromPage = await h.api('/queues', { auth: basic('guest', 'wrong'), headers: { 'x-requested-with': 'XMLHttpRequest' } });
      expect(fromPage.status).toBe(401);
      expect(fromPage.headers.get('www-authenticate')).toBeNull();
    });

    it('whoami gives the user and its tags as a list', async () => {
      expect((await h.api('/whoami')).body).toEqual({ name: 'guest', tags: ['administrator'] });
    });
  });

  describe('message statistics', () => {
    it('counts publishes, deliveries, acks, confirms, gets and unroutables per queue, exchange, channel and vhost, with rates', async () => {
      const ch = await conn.createConfirmChannel();
      await ch.assertExchange('stats-x', 'direct', { durable: false });
      await ch.assertQueue('stats-q', { durable: false });
      await ch.bindQueue('stats-q', 'stats-x', 'k');
      for (let i = 0; i < 20; i++) ch.publish('stats-x', 'k', Buffer.from(`m${i}`));
      ch.publish('stats-x', 'nowhere', Buffer.from('dropped'));
      ch.publish('stats-x', 'nowhere', Buffer.from('returned'), { mandatory: true });
      await ch.waitForConfirms();
      // two gets (one no-ack), one get-empty later; consume the rest and ack them
      const g1 = await ch.get('stats-q', { noAck: false });
      expect(g1).not.toBe(false);
      ch.ack(g1 as Exclude<typeof g1, false>);
      await ch.get('stats-q', { noAck: true });
      let delivered = 0;
      const done = new Promise<void>((resolve) => {
        void ch.consume('stats-q', (m) => {
          if (m === null) return;
          ch.ack(m);
          if (++delivered === 18) resolve();
        });
      });
      await done;
      await ch.close();
      const ch2 = await conn.createChannel();
      expect(await ch2.get('stats-q')).toBe(false);
      await ch2.close();

      const q = await eventually(async () => {
        const r = await h.api('/queues/%2F/stats-q');
        expect(r.body.message_stats.get_empty).toBe(1);
        expect(r.body.message_stats.ack).toBe(19);
        return r.body;
      });
      expect(q.message_stats).toMatchObject({
        publish: 20,
        deliver: 18,
        deliver_no_ack: 0,
        get: 1,
        get_no_ack: 1,
        get_empty: 1,
        ack: 19,
        redeliver: 0,
        deliver_get: 20,
      });
      expect(q.message_stats.publish_details).toEqual({ rate: expect.any(Number) });
      expect(q).toMatchObject({ messages: 0, messages_ready: 0, messages_unacknowledged: 0, consumers: 0, name: 'stats-q', vhost: '/' });

      const x = (await h.api('/exchanges/%2F/stats-x')).body;
      expect(x.message_stats).toMatchObject({ publish_in: 22, publish_out: 20 });

      // the channels are closed: their counts live on in the vhost and the overview
      const expected = {
        publish: 22,
        confirm: 22,
        return_unroutable: 1,
        drop_unroutable: 1,
        deliver: 18,
        get: 1,
        get_no_ack: 1,
        get_empty: 1,
        ack: 19,
        deliver_get: 20,
      };
      await eventually(async () => {
        expect((await h.api('/vhosts/%2F')).body.message_stats).toMatchObject(expected);
        expect((await h.api('/overview')).body.message_stats).toMatchObject(expected);
      });
    });

    it('shows a rate while messages flow, and the queue depth with its own rate', async () => {
      const ch = await conn.createChannel();
      await ch.assertQueue('rate-q', { durable: false });
      let stop = false;
      const pump = (async () => {
        while (!stop) {
          ch.sendToQueue('rate-q', Buffer.from('x'));
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      try {
        const q = await eventually(async () => {
          const r = await h.api('/queues/%2F/rate-q');
          expect(r.body.message_stats.publish_details.rate).toBeGreaterThan(0);
          expect(r.body.messages_ready_details.rate).toBeGreaterThan(0);
          return r.body;
        });
        expect(q.messages_ready).toBeGreaterThan(0);
        await eventually(async () => expect((await h.api('/overview')).body.message_stats.publish_details.rate).toBeGreaterThan(0));
      } finally {
        stop = true;
        await pump;
        await ch.deleteQueue('rate-q');
        await ch.close();
      }
    });
  });

  describe('objects in RabbitMQ shapes', () => {
    let ch: Awaited<ReturnType<ChannelModel['createConfirmChannel']>>;
    beforeAll(async () => {
      ch = await conn.createConfirmChannel();
      await ch.prefetch(5);
      await ch.assertExchange('shape-x', 'topic', { durable: false });
      await ch.assertExchange('shape-x2', 'fanout', { durable: false });
      await ch.bindExchange('shape-x2', 'shape-x', 'a.*');
      await ch.assertQueue('shape-q', { durable: false, arguments: { 'x-message-ttl': 60000 } });
      await ch.bindQueue('shape-q', 'shape-x', 'a.*', { foo: 'bar' });
      await ch.bindQueue('shape-q', 'shape-x', '');
      for (let i = 0; i < 10; i++) ch.publish('shape-x', 'a.b', Buffer.from(`hello ${i}`));
      await ch.waitForConfirms();
      await ch.consume('shape-q', () => {});
      await eventually(async () => expect((await h.api('/queues/%2F/shape-q')).body.messages_unacknowledged).toBe(5));
    });

    it('queues, exchanges, bindings, connections, channels, consumers, vhosts, overview and nodes have the keys RabbitMQ 3.10 has', async () => {
      const conns = (await h.api('/connections')).body;
      const chans = (await h.api('/channels')).body;
      const consumers = (await h.api('/consumers')).body;
      expect(missingKeys('queue', (await h.api('/queues/%2F/shape-q')).body)).toEqual([]);
      expect(missingKeys('exchange', (await h.api('/exchanges/%2F/shape-x')).body)).toEqual([]);
      expect(missingKeys('binding', (await h.api('/bindings/%2F')).body[0])).toEqual([]);
      expect(missingKeys('connection', conns[0])).toEqual([]);
      expect(missingKeys('channel', chans.find((c: { consumer_count: number }) => c.consumer_count === 1))).toEqual([]);
      expect(missingKeys('consumer', consumers[0])).toEqual([]);
      expect(missingKeys('vhost', (await h.api('/vhosts/%2F')).body)).toEqual([]);
      expect(missingKeys('overview', (await h.api('/overview')).body)).toEqual([]);
      expect(missingKeys('node', (await h.api('/nodes')).body[0])).toEqual([]);
      expect(missingKeys('page', (await h.api('/queues?page=1&page_size=2')).body)).toEqual([]);
    });

    it('lists bindings with the default exchange first, exchange-to-exchange ones, and RabbitMQ properties keys', async () => {
      const bindings = (await h.api('/bindings/%2F')).body as Array<Record<string, unknown>>;
      const mine = bindings.filter((b) => b.source === 'shape-x' || b.destination === 'shape-q');
      expect(mine).toContainEqual({
        source: '', vhost: '/', destination: 'shape-q', destination_type: 'queue', routing_key: 'shape-q', arguments: {}, properties_key: 'shape-q',
      });
      expect(mine).toContainEqual({
        source: 'shape-x', vhost: '/', destination: 'shape-q', destination_type: 'queue', routing_key: '', arguments: {}, properties_key: '~',
      });
      expect(mine).toContainEqual({
        source: 'shape-x', vhost: '/', destination: 'shape-x2', destination_type: 'exchange', routing_key: 'a.*', arguments: {}, properties_key: 'a.%2A',
      });
      const withArgs = mine.find((b) => b.destination === 'shape-q' && b.routing_key === 'a.*')!;
      expect(withArgs.arguments).toEqual({ foo: 'bar' });
      expect(withArgs.properties_key).toMatch(/^a\.%2A~[A-Za-z0-9_%-]+$/);

      // one binding by its properties key; the exchange's bindings as source and destination
      const one = await h.api(`/bindings/%2F/e/shape-x/q/shape-q/${encodeURIComponent(withArgs.properties_key as string)}`);
      expect(one.body).toMatchObject({ routing_key: 'a.*', arguments: { foo: 'bar' } });
      expect((await h.api('/bindings/%2F/e/shape-x/q/shape-q/~')).body).toMatchObject({ routing_key: '' });
      expect((await h.api('/bindings/%2F/e/shape-x/q/shape-q/nope')).status).toBe(404);
      expect((await h.api('/bindings/%2F/e/shape-x/e/shape-x2')).body).toHaveLength(1);
      expect((await h.api('/exchanges/%2F/shape-x/bindings/source')).body).toHaveLength(3);
      expect((await h.api('/exchanges/%2F/shape-x2/bindings/destination')).body).toHaveLength(1);
      expect((await h.api('/queues/%2F/shape-q/bindings')).body).toHaveLength(3);
    });

    it('reports the RabbitMQ version it follows as connection.start does, and names itself in product_name', async () => {
      const c = await connect(h.broker.url);
      const props = (c.connection as unknown as { serverProperties: Record<string, unknown> }).serverProperties;
      await c.close();
      const o = (await h.api('/overview')).body;
      expect(o.rabbitmq_version).toBe(props.version);
      expect(o.management_version).toBe(props.version);
      expect(o).toMatchObject({ product_name: 'Warren', product_version: props.warren_version, warren_version: props.warren_version });
      expect((await h.api('/definitions')).body.rabbitmq_version).toBe(props.version);
    });

    it('names the node rabbit@<host>, as the nagios plugins ask for it', async () => {
      const name = `rabbit@${hostname().split('.')[0]}`;
      expect((await h.api('/overview')).body.node).toBe(name);
      const node = await h.api(`/nodes/${name}`);
      expect(node.status).toBe(200);
      expect(node.body).toMatchObject({ name, running: true, mem_alarm: false, disk_free_alarm: false });
      expect(node.body.sockets_used).toBeGreaterThan(0);
      // a single node has no cluster role (test/cluster/node-smoke.test.ts covers a cluster's)
      expect(node.body).not.toHaveProperty('cluster_role');
      expect(node.body).not.toHaveProperty('warren_cluster');
      expect((await h.api('/nodes/rabbit@elsewhere')).status).toBe(404);
    });

    it('shows a queue with its consumers and the default exchange as amq.default', async () => {
      const q = (await h.api('/queues/%2F/shape-q')).body;
      expect(q.arguments).toEqual({ 'x-message-ttl': 60000 });
      expect(q.consumer_details).toHaveLength(1);
      expect(q.consumer_details[0]).toMatchObject({ ack_required: true, prefetch_count: 5, queue: { name: 'shape-q', vhost: '/' } });
      expect((await h.api('/exchanges/%2F/amq.default')).body).toMatchObject({ name: '', type: 'direct', durable: true });
    });

    it('sorts, pages, filters and selects columns as RabbitMQ does', async () => {
      const names = (await h.api('/exchanges/%2F?columns=name&sort=name')).body.map((x: { name: string }) => x.name);
      expect(names).toEqual([...names].sort((a: string, b: string) => a.localeCompare(b)));
      const reversed = (await h.api('/exchanges/%2F?columns=name&sort=name&sort_reverse=true')).body.map((x: { name: string }) => x.name);
      expect(reversed).toEqual([...names].reverse());
      expect((await h.api('/queues?columns=name,message_stats.publish_details.rate')).body).toContainEqual({
        name: 'shape-q',
        message_stats: { publish_details: { rate: expect.any(Number) } },
      });
      const page = (await h.api('/exchanges?page=2&page_size=3&columns=name')).body;
      expect(page).toMatchObject({ page: 2, page_size: 3, item_count: 3, filtered_count: names.length, total_count: names.length });
      expect(page.page_count).toBe(Math.ceil(names.length / 3));
      expect(page.items.map((x: { name: string }) => x.name)).toEqual(names.slice(3, 6));
      const filtered = (await h.api('/exchanges?page=1&name=SHAPE&columns=name')).body;
      expect(filtered.items.map((x: { name: string }) => x.name).sort()).toEqual(['shape-x', 'shape-x2']);
      const regex = (await h.api('/exchanges?page=1&name=%5Eshape-x%24&use_regex=true&columns=name')).body;
      expect(regex.items).toEqual([{ name: 'shape-x' }]);
    });

    it('refuses bad pagination with RabbitMQ bodies', async () => {
      expect(await h.api('/queues?page=500').then((r) => [r.status, r.body.error])).toEqual([400, 'page_out_of_range']);
      const big = await h.api('/queues?page=1&page_size=600');
      expect(big.status).toBe(400);
      expect(big.body).toEqual({ error: 'invalid_pagination_parameters', reason: 'Invalid pagination parameters: page number 1, page size 600' });
      expect((await h.api('/queues?page=abc')).body).toEqual({ error: 'bad_request', reason: 'Pagination parameters are invalid' });
      expect((await h.api('/queues?page=1&name=%5B&use_regex=true')).status).toBe(400);
    });

    it('answers missing objects with 404 and RabbitMQ body', async () => {
      for (const path of ['/queues/%2F/nope', '/queues/nope', '/exchanges/%2F/nope', '/vhosts/nope', '/connections/nope', '/channels/nope', '/nothing-here']) {
        const r = await h.api(path);
        expect([path, r.status, r.body]).toEqual([path, 404, { error: 'Object Not Found', reason: 'Not Found' }]);
      }
    });

    it('lists a connection with its channels and closes it on DELETE with 320 CONNECTION_FORCED', async () => {
      const before = new Set(((await h.api('/connections')).body as Array<{ name: string }>).map((c) => c.name));
      const other = await connect(h.broker.url);
      await other.createChannel();
      other.on('error', () => {});
      const closed = new Promise<Error>((resolve) => other.on('close', resolve));
      const name = await eventually(async () => {
        const list = (await h.api('/connections')).body as Array<{ name: string; channels: number; user: string; state: string }>;
        const c = list.find((x) => !before.has(x.name));
        expect(c).toMatchObject({ channels: 1, user: 'guest', state: 'running' });
        return c!.name;
      });
      const chans = (await h.api(`/connections/${encodeURIComponent(name)}/channels`)).body;
      expect(chans).toHaveLength(1);
      expect(chans[0].name).toBe(`${name} (1)`);
      expect((await h.api(`/channels/${encodeURIComponent(chans[0].name)}`)).body.number).toBe(1);
      const del = await h.api(`/connections/${encodeURIComponent(name)}`, { method: 'DELETE', headers: { 'x-reason': 'maintenance' } });
      expect(del.status).toBe(204);
      const err = (await closed) as Error & { code?: number };
      expect(err.code).toBe(320);
      expect(err.message).toContain('CONNECTION_FORCED - maintenance');
    });
  });

  describe('health checks', () => {
    it('answers ok for alarms, vhosts, the AMQP port and protocol, and fails for a port nobody listens on', async () => {
      expect((await h.api('/health/checks/alarms')).body).toEqual({ status: 'ok' });
      expect((await h.api('/health/checks/local-alarms')).body).toEqual({ status: 'ok' });
      expect((await h.api('/health/checks/virtual-hosts')).body).toEqual({ status: 'ok' });
      expect((await h.api(`/health/checks/port-listener/${h.broker.port}`)).body).toEqual({ status: 'ok', port: h.broker.port });
      expect((await h.api('/health/checks/protocol-listener/amqp091')).body).toEqual({ status: 'ok', protocol: 'amqp' });
      const missing = await h.api('/health/checks/port-listener/1');
      expect(missing.status).toBe(503);
      expect(missing.body).toMatchObject({ status: 'failed', reason: 'No active listener', missing: 1 });
      expect((await h.api('/health/checks/port-listener/notaport')).status).toBe(400);
    });

    it('aliveness-test publishes and gets a message, leaving the aliveness-test queue behind', async () => {
      expect((await h.api('/aliveness-test/%2F')).body).toEqual({ status: 'ok' });
      expect((await h.api('/queues/%2F/aliveness-test')).body).toMatchObject({ name: 'aliveness-test', messages: 0 });
      expect((await h.api('/aliveness-test/nope')).status).toBe(404);
    });
  });
});
