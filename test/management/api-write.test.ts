import { readFileSync } from 'node:fs';
import { connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, eventually, startHttpBroker, type HttpBroker } from './helpers.js';

const rabbitExport = JSON.parse(readFileSync(new URL('../fixtures/rabbitmq-3.10-definitions.json', import.meta.url), 'utf8')) as Record<string, unknown>;

const json = (body: unknown): RequestInit => ({ body: JSON.stringify(body) });

describe('management API: changing the broker (through the operations layer)', () => {
  let h: HttpBroker;

  beforeAll(async () => {
    h = await startHttpBroker();
  });
  afterAll(async () => {
    await h.close();
  });

  describe('users, vhosts, permissions', () => {
    it('creates a vhost (201, then 204), grants its creator full permissions, deletes it (204, then 404)', async () => {
      expect((await h.api('/vhosts/orders', { method: 'PUT', ...json({ description: 'orders' }) })).status).toBe(201);
      expect((await h.api('/vhosts/orders', { method: 'PUT', ...json({}) })).status).toBe(204);
      expect((await h.api('/permissions/orders/guest')).body).toEqual({ user: 'guest', vhost: 'orders', configure: '.*', write: '.*', read: '.*' });
      expect((await h.api('/vhosts/orders')).body).toMatchObject({ name: 'orders' });
      expect((await h.api('/vhosts/orders', { method: 'DELETE' })).status).toBe(204);
      expect((await h.api('/vhosts/orders')).status).toBe(404);
    });

    it('creates a user with tags who can log in to the API and over AMQP with its permissions', async () => {
      expect((await h.api('/vhosts/app', { method: 'PUT' })).status).toBe(201);
      const put = await h.api('/users/app-user', { method: 'PUT', ...json({ password: 's3cret', tags: 'management' }) });
      expect(put.status).toBe(201);
      expect((await h.api('/users/app-user', { method: 'PUT', ...json({ password: 's3cret', tags: 'management' }) })).status).toBe(204);
      const user = (await h.api('/users/app-user')).body;
      expect(user).toMatchObject({ name: 'app-user', tags: ['management'], hashing_algorithm: 'rabbit_password_hashing_sha256' });
      expect(Buffer.from(user.password_hash, 'base64')).toHaveLength(36);
      expect((await h.api('/permissions/app/app-user', { method: 'PUT', ...json({ configure: '^app\\.', write: '.*', read: '.*' }) })).status).toBe(201);

      // the API, as that user: its own vhost only, and not administrator things
      const as = basic('app-user', 's3cret');
      expect((await h.api('/whoami', { auth: as })).body).toEqual({ name: 'app-user', tags: ['management'] });
      expect((await h.api('/vhosts', { auth: as })).body.map((v: { name: string }) => v.name)).toEqual(['app']);
      const refused = await h.api('/users', { auth: as });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Basic realm="RabbitMQ Management"');
      expect(refused.body).toEqual({ error: 'not_authorised', reason: 'Not administrator user' });
      expect((await h.api('/queues/%2F', { auth: as })).status).toBe(401);
      // a queue it may configure, one it may not (403 over AMQP → 401 here)
      expect((await h.api('/queues/app/app.jobs', { method: 'PUT', auth: as, ...json({ durable: true }) })).status).toBe(201);
      expect((await h.api('/queues/app/other', { method: 'PUT', auth: as, ...json({}) })).status).toBe(401);

      // and over AMQP
      const c = await connect(`${h.broker.url.replace('guest:guest', 'app-user:s3cret').replace(/\/?$/, '')}/app`);
      await c.close();

      // no tags: no API
      await h.api('/users/no-tags', { method: 'PUT', ...json({ password: 'x', tags: '' }) });
      const none = await h.api('/overview', { auth: basic('no-tags', 'x') });
      expect([none.status, none.body]).toEqual([401, { error: 'not_authorised', reason: 'Not management user' }]);

      expect((await h.api('/users/app-user', { method: 'DELETE' })).status).toBe(204);
      expect((await h.api('/users/app-user')).status).toBe(404);
      expect((await h.api('/whoami', { auth: as })).status).toBe(401);
    });

    it('a monitoring user reads everything but cannot create a vhost', async () => {
      await h.api('/users/mon', { method: 'PUT', ...json({ password: 'm', tags: ['monitoring'] }) });
      const as = basic('mon', 'm');
      expect((await h.api('/queues', { auth: as })).status).toBe(200);
      expect((await h.api('/vhosts/monitored', { method: 'PUT', auth: as })).status).toBe(401);
    });

    it('topic permissions and vhost limits', async () => {
      await h.api('/users/t', { method: 'PUT', ...json({ password: 't', tags: '' }) });
      expect((await h.api('/topic-permissions/%2F/t', { method: 'PUT', ...json({ exchange: 'amq.topic', write: '^t\\.', read: '.*' }) })).status).toBe(201);
      expect((await h.api('/topic-permissions/%2F/t')).body).toEqual([{ user: 't', vhost: '/', exchange: 'amq.topic', write: '^t\\.', read: '.*' }]);
      expect((await h.api('/vhost-limits/%2F/max-queues', { method: 'PUT', ...json({ value: 1000 }) })).status).toBe(204);
      expect((await h.api('/vhost-limits/%2F')).body).toEqual([{ vhost: '/', value: { 'max-queues': 1000 } }]);
      expect((await h.api('/vhost-limits/%2F/max-queues', { method: 'DELETE' })).status).toBe(204);
      expect((await h.api('/vhost-limits/%2F')).body).toEqual([]);
      expect((await h.api('/vhost-limits/%2F/max-widgets', { method: 'PUT', ...json({ value: 1 }) })).status).toBe(400);
    });

    it('refuses bad input with RabbitMQ bodies', async () => {
      const bad = await h.api('/vhosts/x', { method: 'PUT', body: '{bad' });
      expect([bad.status, bad.body]).toEqual([400, { error: 'bad_request', reason: 'not_json' }]);
      expect((await h.api('/users/nopass', { method: 'PUT', ...json({ tags: '' }) })).status).toBe(400);
      expect((await h.api('/permissions/%2F/nobody', { method: 'PUT', ...json({ configure: '.*', write: '.*', read: '.*' }) })).status).toBe(404);
      expect((await h.api('/permissions/%2F/guest', { method: 'PUT', ...json({ configure: '(', write: '.*', read: '.*' }) })).status).toBe(400);
    });
  });

  describe('queues, exchanges, bindings, publish and get', () => {
    it('declares with rabbitmqadmin-style string booleans, answers 201/204, refuses an inequivalent redeclare', async () => {
      expect((await h.api('/queues/%2F/w-q', { method: 'PUT', ...json({ durable: 'false', auto_delete: 'false', arguments: { 'x-message-ttl': 60000 }, vhost: '/', name: 'w-q' }) })).status).toBe(201);
      expect((await h.api('/queues/%2F/w-q', { method: 'PUT', ...json({ durable: false, arguments: { 'x-message-ttl': 60000 } }) })).status).toBe(204);
      const ineq = await h.api('/queues/%2F/w-q', { method: 'PUT', ...json({ durable: true, arguments: { 'x-message-ttl': 60000 } }) });
      expect(ineq.status).toBe(400);
      expect(ineq.body).toEqual({ error: 'bad_request', reason: "inequivalent arg 'durable' for queue 'w-q' in vhost '/': received 'true' but current is 'false'" });
      const missingVhost = await h.api('/queues/nope/q', { method: 'PUT', ...json({}) });
      expect([missingVhost.status, missingVhost.body]).toEqual([404, { error: 'not_found', reason: 'vhost_not_found' }]);
      expect((await h.api('/exchanges/%2F/w-x', { method: 'PUT', ...json({ type: 'topic', durable: 'false' }) })).status).toBe(201);
      expect((await h.api('/exchanges/%2F/w-x2', { method: 'PUT', ...json({ type: 'fanout', durable: false }) })).status).toBe(201);
      expect((await h.api('/exchanges/%2F/w-bad', { method: 'PUT', ...json({ type: 'nonsense' }) })).status).toBe(400);
    });

    it('binds with 201 and a Location, lists and deletes by properties key (~ for an empty key)', async () => {
      const b = await h.api('/bindings/%2F/e/w-x/q/w-q', { method: 'POST', ...json({ routing_key: 'a.*', arguments: {} }) });
      expect(b.status).toBe(201);
      expect(b.headers.get('location')).toBe('w-q/a.%252A');
      expect((await h.api('/bindings/%2F/e/w-x/q/w-q', { method: 'POST', ...json({}) })).status).toBe(201);
      expect((await h.api('/bindings/%2F/e/w-x/e/w-x2', { method: 'POST', ...json({ routing_key: 'x', arguments: { k: 1 } }) })).status).toBe(201);
      const keys = (await h.api('/bindings/%2F/e/w-x/q/w-q')).body.map((x: { properties_key: string }) => x.properties_key).sort();
      expect(keys).toEqual(['a.%2A', '~']);
      expect((await h.api('/bindings/%2F/e/w-x/q/w-q/~', { method: 'DELETE' })).status).toBe(204);
      expect((await h.api('/bindings/%2F/e/w-x/q/w-q/~', { method: 'DELETE' })).status).toBe(404);
      const e2e = (await h.api('/bindings/%2F/e/w-x/e/w-x2')).body[0];
      expect((await h.api(`/bindings/%2F/e/w-x/e/w-x2/${encodeURIComponent(e2e.properties_key)}`, { method: 'DELETE' })).status).toBe(204);
    });

    it('publishes (routed or not) and gets messages as RabbitMQ does (requeued ones come back redelivered)', async () => {
      const pub = await h.api('/exchanges/%2F/w-x/publish', {
        method: 'POST',
        ...json({ routing_key: 'a.b', payload: 'hello', payload_encoding: 'string', properties: { delivery_mode: 2, headers: { h: 1 }, correlation_id: 'c1' } }),
      });
      expect(pub.body).toEqual({ routed: true });
      expect((await h.api('/exchanges/%2F/w-x/publish', { method: 'POST', ...json({ routing_key: 'zzz', payload: 'x', payload_encoding: 'string', properties: {} }) })).body).toEqual({ routed: false });
      await h.api('/exchanges/%2F/amq.default/publish', { method: 'POST', ...json({ routing_key: 'w-q', payload: Buffer.from([0xff, 0xfe]).toString('base64'), payload_encoding: 'base64', properties: {} }) });
      const got = await h.api('/queues/%2F/w-q/get', { method: 'POST', ...json({ count: '5', ackmode: 'ack_requeue_true', encoding: 'auto', truncate: '50000' }) });
      expect(got.body).toEqual([
        { payload_bytes: 5, redelivered: false, exchange: 'w-x', routing_key: 'a.b', message_count: 1, properties: { delivery_mode: 2, headers: { h: 1 }, correlation_id: 'c1' }, payload: 'hello', payload_encoding: 'string' },
        { payload_bytes: 2, redelivered: false, exchange: '', routing_key: 'w-q', message_count: 0, properties: [], payload: '//4=', payload_encoding: 'base64' },
      ]);
      const again = await h.api('/queues/%2F/w-q/get', { method: 'POST', ...json({ count: 1, ackmode: 'ack_requeue_false', encoding: 'auto' }) });
      expect(again.body[0]).toMatchObject({ payload: 'hello', redelivered: true });
      expect((await h.api('/queues/%2F/w-q')).body.messages).toBe(1);
      expect((await h.api('/queues/%2F/w-q/get', { method: 'POST', ...json({ count: 1, ackmode: 'bogus', encoding: 'auto' }) })).status).toBe(400);
      // the exchange counted the publishes
      await eventually(async () => expect((await h.api('/exchanges/%2F/w-x')).body.message_stats).toMatchObject({ publish_in: 2, publish_out: 1 }));
    });

    it('browses a queue without taking messages, reordering them or marking them redelivered', async () => {
      const c = await connect(h.broker.url);
      const ch = await c.createChannel();
      await ch.assertQueue('browse-q', { durable: false, arguments: { 'x-max-priority': 5 } });
      ch.sendToQueue('browse-q', Buffer.from('low'), { priority: 0 });
      ch.sendToQueue('browse-q', Buffer.from('high'), { priority: 5 });
      ch.sendToQueue('browse-q', Buffer.from('low 2'), { priority: 0, headers: { n: 2 } });
      await eventually(async () => expect((await h.api('/queues/%2F/browse-q')).body.messages).toBe(3));
      const browse = async () => (await h.api('/warren/queues/%2F/browse-q/browse?count=10')).body;
      const first = await browse();
      expect(first.items.map((m: { payload: string; redelivered: boolean; position: number }) => [m.position, m.payload, m.redelivered])).toEqual([
        [1, 'high', false],
        [2, 'low', false],
        [3, 'low 2', false],
      ]);
      expect(first.items[2].properties).toMatchObject({ priority: 0, headers: { n: 2 } });
      expect(await browse()).toEqual(first);
      // a consumer still gets them in order, never redelivered because of the browser
      const m = await ch.get('browse-q', { noAck: true });
      expect(m !== false && [m.content.toString(), m.fields.redelivered]).toEqual(['high', false]);
      expect((await h.api('/warren/queues/%2F/browse-q/browse?count=1')).body.items.map((x: { payload: string }) => x.payload)).toEqual(['low']);
      expect((await h.api('/warren/queues/%2F/nope/browse')).status).toBe(404);
      await c.close();
    });

    it('purges and deletes queues and exchanges', async () => {
      expect((await h.api('/queues/%2F/w-q/contents', { method: 'DELETE' })).status).toBe(204);
      expect((await h.api('/queues/%2F/w-q')).body.messages).toBe(0);
      expect((await h.api('/queues/%2F/w-q', { method: 'DELETE' })).status).toBe(204);
      expect((await h.api('/queues/%2F/w-q')).status).toBe(404);
      expect((await h.api('/exchanges/%2F/w-x', { method: 'DELETE' })).status).toBe(204);
      expect((await h.api('/exchanges/%2F/w-x', { method: 'DELETE' })).status).toBe(404);
    });
  });

  describe('definitions', () => {
    it('imports a RabbitMQ 3.10 export: users log in with their old passwords, topology and permissions are there', async () => {
      expect((await h.api('/definitions', { method: 'POST', ...json(rabbitExport) })).status).toBe(204);
      const as = basic('ops-fixture-app', 'app-secret');
      expect((await h.api('/whoami', { auth: as })).body).toEqual({ name: 'ops-fixture-app', tags: ['management'] });
      expect((await h.api('/whoami', { auth: basic('ops-fixture-admin', 'admin-secret') })).body.tags).toEqual(['administrator']);
      expect((await h.api('/permissions/ops-fixture/ops-fixture-app')).body).toMatchObject({ configure: '^app\\.' });
      const queues = (await h.api('/queues/ops-fixture?columns=name,arguments')).body;
      expect(queues).toContainEqual({ name: 'app.jobs', arguments: { 'x-message-ttl': 60000, 'x-dead-letter-exchange': 'app.dlx', 'x-dead-letter-routing-key': 'dead' } });
      const exchanges = (await h.api('/exchanges/ops-fixture?columns=name,type,arguments')).body;
      expect(exchanges).toContainEqual({ name: 'app.direct', type: 'direct', arguments: { 'alternate-exchange': 'app.unrouted' } });
      expect(exchanges).toContainEqual(expect.objectContaining({ name: 'app.hash', type: 'x-consistent-hash' }));
      expect((await h.api('/bindings/ops-fixture/e/app.events/e/app.direct')).body).toHaveLength(1);
      // over AMQP with the imported password
      const c = await connect(h.broker.url.replace('guest:guest', 'ops-fixture-app:app-secret') + '/ops-fixture');
      await c.close();
    });

    it('exports in RabbitMQ format, and the export imports again', async () => {
      const d = (await h.api('/definitions')).body;
      for (const k of ['rabbit_version', 'rabbitmq_version', 'product_name', 'product_version', 'users', 'vhosts', 'permissions', 'topic_permissions', 'parameters', 'global_parameters', 'policies', 'queues', 'exchanges', 'bindings']) {
        expect(d).toHaveProperty(k);
      }
      expect(d.users).toContainEqual(expect.objectContaining({ name: 'ops-fixture-app', hashing_algorithm: 'rabbit_password_hashing_sha256', tags: ['management'] }));
      expect(d.exchanges.map((x: { name: string }) => x.name)).not.toContain('amq.direct');
      expect(d.parameters).toContainEqual({ value: { 'max-queues': 500, 'max-connections': 100 }, vhost: 'ops-fixture', component: 'vhost-limits', name: 'limits' });
      expect((await h.api('/definitions', { method: 'POST', ...json(d) })).status).toBe(204);
      const vhostOnly = (await h.api('/definitions/ops-fixture')).body;
      expect(Object.keys(vhostOnly).sort()).toEqual(['bindings', 'exchanges', 'parameters', 'policies', 'queues', 'rabbit_version']);
      expect(vhostOnly.queues[0]).not.toHaveProperty('vhost');
    });

    it('refuses bad JSON with failed_to_parse_json', async () => {
      const r = await h.api('/definitions', { method: 'POST', body: '{not json' });
      expect([r.status, r.body]).toEqual([400, { error: 'bad_request', reason: 'failed_to_parse_json' }]);
    });
  });
});
