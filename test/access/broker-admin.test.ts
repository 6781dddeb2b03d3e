import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/index.js';
import { ReplyCode } from '../../src/protocol/reply-code.js';
import { putUser, setPermissions } from '../../src/operations/index.js';
import { SYSTEM_USER } from '../../src/operations/session.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function broker(options: Parameters<typeof startBroker>[0] = {}): Promise<RunningBroker> {
  const b = await startBroker(options);
  cleanups.push(() => b.close());
  return b;
}

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'warren-access-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function url(b: RunningBroker, user: string, password: string, vhost = '/'): string {
  const u = new URL(b.url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  u.pathname = `/${encodeURIComponent(vhost)}`;
  return u.href;
}

async function connect(u: string): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(u);
  c.on('error', () => {});
  cleanups.push(() => c.close().catch(() => {}));
  return c;
}

describe('the broker API (RunningBroker.admin)', () => {
  it('a fresh store has guest (administrator, loopback only) with .* on /', async () => {
    const b = await broker();
    expect(b.admin.users().map((u) => ({ name: u.name, tags: u.tags, hashingAlgorithm: u.hashingAlgorithm }))).toEqual([
      { name: 'guest', tags: ['administrator'], hashingAlgorithm: 'rabbit_password_hashing_sha256' },
    ]);
    expect(b.admin.permissions()).toEqual([{ user: 'guest', vhost: '/', configure: '.*', write: '.*', read: '.*' }]);
  });

  it('creates a user and a vhost, grants permissions; the user connects there and only there', async () => {
    const b = await broker();
    await b.admin.addVhost('app', { description: 'the app', tags: ['prod'] });
    await b.admin.addUser('alice', { password: 's3cret', tags: ['management'] });
    await b.admin.setPermissions('alice', 'app', { configure: '^alice\\.', write: '.*', read: '.*' });
    expect(b.admin.vhosts()).toEqual([
      { name: '/', description: '', tags: [], limits: undefined },
      { name: 'app', description: 'the app', tags: ['prod'], limits: undefined },
    ]);
    const conn = await connect(url(b, 'alice', 's3cret', 'app'));
    const ch = await conn.createChannel();
    await ch.assertQueue('alice.q');
    await expect(connect(url(b, 'alice', 'wrong', 'app'))).rejects.toThrow(/ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN/);
    await expect(connect(url(b, 'alice', 's3cret', '/'))).rejects.toThrow();
  });

  it('changes to permissions apply to open channels at once (the publish permit cache is invalidated)', async () => {
    const b = await broker();
    await b.admin.addUser('bob', { password: 'pw' });
    await b.admin.setPermissions('bob', '/', { configure: '.*', write: '.*', read: '.*' });
    const conn = await connect(url(b, 'bob', 'pw'));
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await ch.assertExchange('bob.x', 'fanout', { durable: false });
    ch.publish('bob.x', '', Buffer.from('1'));
    await ch.checkExchange('bob.x');
    await b.admin.setPermissions('bob', '/', { configure: '.*', write: '^$', read: '.*' });
    const closed = new Promise<Error>((resolve) => ch.once('error', resolve));
    ch.publish('bob.x', '', Buffer.from('2'));
    expect((await closed).message).toContain("ACCESS_REFUSED - access to exchange 'bob.x' in vhost '/' refused for user 'bob'");
  });

  it('validates: unknown user/vhost → 404, bad regex / hash / limit → 406; administration needs the administrator tag', async () => {
    const b = await broker();
    await expect(b.admin.setPermissions('nobody', '/', { configure: '', write: '', read: '' })).rejects.toMatchObject({ replyCode: ReplyCode.NotFound });
    await expect(b.admin.setPermissions('guest', 'nowhere', { configure: '', write: '', read: '' })).rejects.toMatchObject({ replyCode: ReplyCode.NotFound });
    await expect(b.admin.setPermissions('guest', '/', { configure: '(', write: '', read: '' })).rejects.toMatchObject({ replyCode: ReplyCode.PreconditionFailed });
    await expect(b.admin.addUser('x', { passwordHash: 'abc', hashingAlgorithm: 'rabbit_password_hashing_sha256' })).rejects.toMatchObject({ replyCode: ReplyCode.PreconditionFailed });
    await expect(b.admin.addUser('x', { passwordHash: 'abc', hashingAlgorithm: 'bcrypt' })).rejects.toThrow(/unknown hashing algorithm/);
    await expect(b.admin.setVhostLimits('/', { maxQueues: -5 })).rejects.toMatchObject({ replyCode: ReplyCode.PreconditionFailed });
    await expect(b.admin.deleteVhost('nowhere')).rejects.toMatchObject({ replyCode: ReplyCode.NotFound });
    // the same operations called for a user without the administrator tag (as the management API will)
    const core = (b.admin as unknown as { actor: { core: import('../../src/operations/core.js').Core } }).actor.core;
    const monitoring = { core, user: { name: 'mon', tags: ['monitoring'] } };
    expect(() => putUser(monitoring, 'x', { password: 'y' })).toThrow(/not an administrator/);
    expect(() => setPermissions({ core, user: SYSTEM_USER }, 'guest', '/', { configure: '.*', write: '.*', read: '.*' })).not.toThrow();
  });

  it('deleting a vhost removes everything in it; creating it again starts empty', async () => {
    const b = await broker();
    await b.admin.addVhost('tmp');
    await b.admin.setPermissions('guest', 'tmp', { configure: '.*', write: '.*', read: '.*' });
    const conn = await connect(url(b, 'guest', 'guest', 'tmp'));
    const ch = await conn.createChannel();
    await ch.assertQueue('q');
    ch.sendToQueue('q', Buffer.from('x'));
    await ch.checkQueue('q');
    await b.admin.deleteVhost('tmp');
    expect(b.admin.permissions().filter((p) => p.vhost === 'tmp')).toEqual([]);
    await b.admin.addVhost('tmp');
    await b.admin.setPermissions('guest', 'tmp', { configure: '.*', write: '.*', read: '.*' });
    const ch2 = await (await connect(url(b, 'guest', 'guest', 'tmp'))).createChannel();
    ch2.on('error', () => {});
    await expect(ch2.checkQueue('q')).rejects.toThrow(/NOT_FOUND/);
  });
});

describe('persistence', () => {
  it('users, vhosts, permissions, topic permissions and limits survive a restart; deleted ones stay deleted', { timeout: 30_000 }, async () => {
    const dir = await dataDir();
    const first = await startBroker({ dataDir: dir });
    await first.admin.addVhost('v1', { description: 'one' });
    await first.admin.addUser('carol', { password: 'pw', tags: ['monitoring'] });
    await first.admin.setPermissions('carol', 'v1', { configure: '^c', write: '^w', read: '^r' });
    await first.admin.setTopicPermissions('carol', 'v1', { exchange: 'amq.topic', write: '^a', read: '^b' });
    await first.admin.setVhostLimits('v1', { maxQueues: 7 });
    await first.admin.deleteUser('guest');
    await first.close();

    const second = await startBroker({ dataDir: dir });
    try {
      // guest is not seeded again: the defaults are created once
      expect(second.admin.users().map((u) => u.name)).toEqual(['carol']);
      expect(second.admin.users()[0]!.tags).toEqual(['monitoring']);
      expect(second.admin.vhosts()).toEqual([
        { name: '/', description: '', tags: [], limits: undefined },
        { name: 'v1', description: 'one', tags: [], limits: { vhost: 'v1', maxQueues: 7 } },
      ]);
      expect(second.admin.permissions()).toEqual([{ user: 'carol', vhost: 'v1', configure: '^c', write: '^w', read: '^r' }]);
      expect(second.admin.topicPermissions()).toEqual([{ user: 'carol', vhost: 'v1', exchange: 'amq.topic', write: '^a', read: '^b' }]);
      const conn = await amqp.connect(url(second, 'carol', 'pw', 'v1'));
      await conn.close();
      await expect(amqp.connect(second.url)).rejects.toThrow(/ACCESS_REFUSED/);
    } finally {
      await second.close();
    }
  });

  it('--default-user replaces guest on a new store', async () => {
    const b = await broker({ defaultUser: { username: 'admin', password: 'pw' } });
    expect(b.admin.users().map((u) => u.name)).toEqual(['admin']);
    await (await connect(url(b, 'admin', 'pw'))).createChannel();
    await expect(connect(b.url)).rejects.toThrow(/ACCESS_REFUSED/);
  });
});

describe('definitions (RabbitMQ export format)', () => {
  const exported = {
    rabbit_version: '3.10.8',
    users: [
      // exported by RabbitMQ 3.10: the password is 'guest'
      { name: 'legacy', password_hash: 'PETk1FVJV/ogppVcHQ7FD0TUoo3d923TfYPkam0fxaHgFCbP', hashing_algorithm: 'rabbit_password_hashing_sha256', tags: ['administrator'], limits: {} },
      { name: 'old-tags', password_hash: '', tags: 'monitoring,management' },
    ],
    vhosts: [{ name: 'imported', description: 'from rabbit', tags: [], metadata: { description: 'from rabbit', tags: ['x'] } }],
    permissions: [{ user: 'legacy', vhost: 'imported', configure: '.*', write: '.*', read: '.*' }],
    topic_permissions: [{ user: 'legacy', vhost: 'imported', exchange: 'amq.topic', write: '.*', read: '.*' }],
    parameters: [{ value: { 'max-connections': 10 }, vhost: 'imported', component: 'vhost-limits', name: 'limits' }],
    global_parameters: [{ name: 'cluster_name', value: 'rabbit@vm' }],
    policies: [{ vhost: 'imported', name: 'ttl', pattern: '.*', 'apply-to': 'queues', definition: { 'message-ttl': 1000 }, priority: 0 }],
    queues: [{ name: 'orders', vhost: 'imported', durable: true, auto_delete: false, arguments: { 'x-max-priority': 5 } }],
    exchanges: [
      { name: 'orders.x', vhost: 'imported', type: 'topic', durable: true, auto_delete: false, internal: false, arguments: {} },
      { name: 'edge', vhost: 'imported', type: 'fanout', durable: true, auto_delete: false, internal: false, arguments: {} },
    ],
    bindings: [
      { source: 'orders.x', vhost: 'imported', destination: 'orders', destination_type: 'queue', routing_key: 'order.#', arguments: {} },
      { source: 'edge', vhost: 'imported', destination: 'orders.x', destination_type: 'exchange', routing_key: '', arguments: {} },
    ],
  };

  it('--definitions imports users with their RabbitMQ hashes: they log in with their old passwords', async () => {
    const dir = await dataDir();
    const file = join(dir, 'definitions.json');
    await writeFile(file, JSON.stringify(exported));
    const b = await broker({ definitions: file });
    expect(b.admin.users().find((u) => u.name === 'old-tags')!.tags).toEqual(['monitoring', 'management']);
    expect(b.admin.vhosts().find((v) => v.name === 'imported')).toEqual({
      name: 'imported',
      description: 'from rabbit',
      tags: ['x'],
      limits: { vhost: 'imported', maxConnections: 10, maxQueues: undefined },
    });
    const conn = await connect(url(b, 'legacy', 'guest', 'imported'));
    const ch = await conn.createChannel();
    ch.publish('edge', 'order.new', Buffer.from('through e2e and topic'));
    await ch.checkQueue('orders');
    const m = await ch.get('orders', { noAck: true });
    expect(m && m.content.toString()).toBe('through e2e and topic');
  });

  it('importing twice is harmless; an invalid file refuses to start with a clear message', async () => {
    const b = await broker();
    const report = await b.admin.importDefinitions(exported);
    expect(report).toMatchObject({ users: 2, vhosts: 1, queues: 1, exchanges: 2, bindings: 2, limits: 1 });
    // policies are imported too (issue #12): nothing is skipped
    expect(report.skipped).toEqual([]);
    await b.admin.importDefinitions(exported);
    const dir = await dataDir();
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ users: [{ name: 'x', password_hash: 'zzz', hashing_algorithm: 'rabbit_password_hashing_sha256' }] }));
    await expect(startBroker({ definitions: bad })).rejects.toThrow(/definitions in .*bad\.json could not be imported: user 'x': password_hash of user 'x' is not a rabbit_password_hashing_sha256 hash/);
  });
});
