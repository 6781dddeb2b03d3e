import { createServer, type AddressInfo } from 'node:net';
import { connect, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CTL_EXIT, runCtl } from '../../src/cli/ctl.js';
import { startHttpBroker, type HttpBroker } from '../management/helpers.js';

async function ctl(argv: string[], fetchFn?: typeof fetch, files: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const written: Record<string, string> = {};
  const code = await runCtl(argv, {}, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    fetch: fetchFn,
    readFile: (p) => {
      if (!(p in files)) throw new Error(`ENOENT: ${p}`);
      return files[p]!;
    },
    writeFile: (p, t) => (written[p] = t),
  });
  return { code, stdout, stderr, written };
}

describe('warren ctl against a running Warren', () => {
  let h: HttpBroker;
  let conn: ChannelModel;
  let url: string;

  beforeAll(async () => {
    h = await startHttpBroker();
    url = h.base;
    conn = await connect(h.broker.url);
    const ch = await conn.createChannel();
    await ch.assertQueue('ctl-q', { durable: false });
    ch.sendToQueue('ctl-q', Buffer.from('a'));
    ch.sendToQueue('ctl-q', Buffer.from('b'));
    await ch.assertExchange('ctl-x', 'fanout', { durable: false });
    await ch.bindQueue('ctl-q', 'ctl-x', '');
  });
  afterAll(async () => {
    await conn.close().catch(() => {});
    await h.close();
  });

  it('status prints the node and totals', async () => {
    const r = await ctl(['--management-url', url, 'status']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/product\s+Warren /);
    expect(r.stdout).toMatch(/node\s+rabbit@/);
    expect(r.stdout).toMatch(/queues\s+1/);
  });

  it('list queues prints a table, --json the API objects', async () => {
    const t = await ctl(['--management-url', url, 'list', 'queues']);
    expect(t.code).toBe(0);
    const lines = t.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^name\s+messages\s+messages_ready\s+messages_unacknowledged\s+consumers$/);
    expect(lines).toContainEqual(expect.stringMatching(/^ctl-q\s+2\s+2\s+0\s+0$/));
    const j = await ctl(['--management-url', url, '--json', 'list', 'queues']);
    expect(JSON.parse(j.stdout)).toContainEqual(expect.objectContaining({ name: 'ctl-q', messages: 2 }));
    const b = await ctl(['--management-url', url, 'list', 'bindings']);
    expect(b.stdout).toMatch(/ctl-x\s+ctl-q\s+queue/);
    const c = await ctl(['--management-url', url, 'list', 'connections']);
    expect(c.stdout).toMatch(/127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+\s+guest\s+\/\s+running\s+1/);
  });

  it('close_connection closes a connection by its listed name', async () => {
    const other = await connect(h.broker.url);
    other.on('error', () => {});
    const closed = new Promise<Error & { code?: number }>((resolve) => other.on('close', resolve));
    const list = JSON.parse((await ctl(['--management-url', url, '--json', 'list', 'connections'])).stdout) as Array<{ name: string }>;
    const names = list.map((c) => c.name);
    // the newest connection is the one with the highest peer port we do not already hold open
    const name = names.find((n) => !n.includes(`:${(conn.connection as unknown as { stream: { localPort: number } }).stream.localPort} ->`))!;
    const r = await ctl(['--management-url', url, 'close_connection', name, 'bye']);
    expect(r.code).toBe(0);
    expect((await closed).message).toContain('CONNECTION_FORCED - bye');
  });

  it('takes credentials from the URL or the flags and says so in one line when they are refused', async () => {
    const withCreds = url.replace('http://', 'http://guest:guest@');
    expect((await ctl(['--management-url', withCreds, 'status'])).code).toBe(0);
    const r = await ctl(['--management-url', url, '--user', 'guest', '--password', 'wrong', 'status']);
    expect(r.code).toBe(CTL_EXIT.NOPERM);
    expect(r.stderr).toBe('warren ctl: credentials refused by the broker (check --user/--password or the URL)\n');
  });

  it('reports a missing object with exit 65', async () => {
    const r = await ctl(['--management-url', url, '-p', 'nope', 'list', 'queues']);
    expect(r.code).toBe(CTL_EXIT.DATA);
    expect(r.stderr).toMatch(/^warren ctl: not found: GET \/queues\/nope\n$/);
  });
});

describe('warren ctl errors and requests', () => {
  it('says in one line when no broker answers (exit 69)', async () => {
    // a port that was free a moment ago: nothing listens there
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    const r = await ctl(['--management-url', `http://127.0.0.1:${port}`, 'status']);
    expect(r.code).toBe(CTL_EXIT.UNAVAILABLE);
    expect(r.stderr).toBe(`warren ctl: cannot reach the management API at http://127.0.0.1:${port}: connection refused (is the broker running with its management port on?)\n`);
  });

  it('refuses bad usage with exit 64', async () => {
    expect((await ctl(['bogus'])).code).toBe(CTL_EXIT.USAGE);
    expect((await ctl(['bogus'])).stderr).toBe("warren ctl: unknown command 'bogus'\n");
    expect((await ctl(['list', 'widgets'])).stderr).toMatch(/unknown kind 'widgets'/);
    expect((await ctl(['add_user', 'only-name'])).code).toBe(CTL_EXIT.USAGE);
    expect((await ctl(['set_policy', 'p', '.*', 'not json'])).stderr).toMatch(/not JSON/);
    expect((await ctl(['--management-url', 'nope', 'status'])).stderr).toMatch(/invalid --management-url/);
    expect((await ctl(['--help'])).code).toBe(0);
  });

  it('sends the RabbitMQ API requests rabbitmqctl users expect', async () => {
    const seen: Array<{ method: string; url: string; body: unknown; auth: string | null; reason: string | null }> = [];
    const fake = (async (input: string | URL | Request, init?: RequestInit) => {
      const headers = new Headers(init?.headers);
      seen.push({
        method: init?.method ?? 'GET',
        url: String(input),
        body: init?.body === undefined ? undefined : JSON.parse(String(init.body)),
        auth: headers.get('authorization'),
        reason: headers.get('x-reason'),
      });
      const isGetUser = (init?.method ?? 'GET') === 'GET' && String(input).includes('/api/users/');
      return new Response(isGetUser ? JSON.stringify({ name: 'app', tags: ['management'], password_hash: 'h', hashing_algorithm: 'rabbit_password_hashing_sha256' }) : null, { status: isGetUser ? 200 : 204 });
    }) as typeof fetch;
    const base = ['--management-url', 'http://admin:pw@broker:15672/'];
    await ctl([...base, 'add_user', 'app', 'secret', '--tags', 'management'], fake);
    await ctl([...base, 'add_vhost', 'orders'], fake);
    await ctl([...base, '-p', 'orders', 'set_permissions', 'app', '.*', '.*', '.*'], fake);
    await ctl([...base, 'set_user_tags', 'app', 'monitoring', 'policymaker'], fake);
    await ctl([...base, 'change_password', 'app', 'new'], fake);
    await ctl([...base, '-p', 'orders', 'set_policy', 'dlx', '^jobs$', '{"message-ttl":60000,"dead-letter-exchange":"dead"}', '--apply-to', 'queues', '--priority', '5'], fake);
    await ctl([...base, '-p', 'orders', 'clear_policy', 'dlx'], fake);
    await ctl([...base, '-p', 'orders', 'purge_queue', 'jobs'], fake);
    await ctl([...base, '-p', 'orders', 'delete_queue', 'jobs'], fake);
    await ctl([...base, 'delete_user', 'app'], fake);
    await ctl([...base, 'delete_vhost', 'orders'], fake);
    await ctl([...base, 'close_connection', '1.2.3.4:5 -> 6.7.8.9:5672'], fake);
    await ctl([...base, 'import_definitions', '/defs.json'], fake, { '/defs.json': '{"queues":[]}' });
    const auth = `Basic ${Buffer.from('admin:pw').toString('base64')}`;
    expect(seen.every((s) => s.auth === auth)).toBe(true);
    expect(seen.map((s) => [s.method, s.url.replace('http://broker:15672', ''), s.body])).toEqual([
      ['PUT', '/api/users/app', { password: 'secret', tags: 'management' }],
      ['PUT', '/api/vhosts/orders', {}],
      ['PUT', '/api/permissions/orders/app', { configure: '.*', write: '.*', read: '.*' }],
      ['GET', '/api/users/app', undefined],
      ['PUT', '/api/users/app', { tags: 'monitoring,policymaker', password_hash: 'h', hashing_algorithm: 'rabbit_password_hashing_sha256' }],
      ['GET', '/api/users/app', undefined],
      ['PUT', '/api/users/app', { password: 'new', tags: 'management' }],
      ['PUT', '/api/policies/orders/dlx', { pattern: '^jobs$', definition: { 'message-ttl': 60000, 'dead-letter-exchange': 'dead' }, priority: 5, 'apply-to': 'queues' }],
      ['DELETE', '/api/policies/orders/dlx', undefined],
      ['DELETE', '/api/queues/orders/jobs/contents', undefined],
      ['DELETE', '/api/queues/orders/jobs', undefined],
      ['DELETE', '/api/users/app', undefined],
      ['DELETE', '/api/vhosts/orders', undefined],
      ['DELETE', `/api/connections/${encodeURIComponent('1.2.3.4:5 -> 6.7.8.9:5672')}`, undefined],
      ['POST', '/api/definitions', { queues: [] }],
    ]);
    expect(seen.find((s) => s.method === 'DELETE' && s.url.includes('/connections/'))!.reason).toBe('Closed via warren ctl');
  });

  it('exports definitions to a file', async () => {
    const fake = (async () => new Response(JSON.stringify({ rabbit_version: '3.10.8', queues: [] }), { status: 200 })) as unknown as typeof fetch;
    const r = await ctl(['export_definitions', '/out.json'], fake);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.written['/out.json']!)).toEqual({ rabbit_version: '3.10.8', queues: [] });
  });
});

describe('warren ctl manages users, vhosts, permissions and definitions on Warren', () => {
  let h: HttpBroker;
  beforeAll(async () => {
    h = await startHttpBroker();
  });
  afterAll(async () => {
    await h.close();
  });

  it('creates a user and a vhost a client can then use, and carries them through export and import', async () => {
    const c = (...args: string[]) => ctl(['--management-url', h.base, ...args]);
    for (const args of [
      ['add_vhost', 'shop'],
      ['add_user', 'clerk', 'pw1', '--tags', 'management'],
      ['-p', 'shop', 'set_permissions', 'clerk', '^clerk\\.', '.*', '.*'],
      ['set_user_tags', 'clerk', 'monitoring'],
      ['change_password', 'clerk', 'pw2'],
    ]) {
      const r = await c(...args);
      expect([args.join(' '), r.code, r.stderr]).toEqual([args.join(' '), 0, '']);
    }
    const users = JSON.parse((await c('--json', 'list', 'users')).stdout) as Array<{ name: string; tags: string[] }>;
    expect(users).toContainEqual(expect.objectContaining({ name: 'clerk', tags: ['monitoring'] }));
    expect((await c('-p', 'shop', 'list', 'permissions')).stdout).toMatch(/clerk\s+\^clerk\\\.\s+\.\*\s+\.\*/);
    // the new password works over AMQP in the new vhost, within the permissions
    const conn = await connect(`${h.broker.url.replace('guest:guest', 'clerk:pw2')}/shop`);
    const ch = await conn.createChannel();
    await ch.assertQueue('clerk.orders');
    await conn.close();

    const exported = await c('export_definitions', '/defs.json');
    expect(exported.code).toBe(0);
    const defs = JSON.parse(exported.written['/defs.json']!) as { users: Array<{ name: string }>; queues: Array<{ name: string }> };
    expect(defs.users.map((u) => u.name)).toContain('clerk');
    expect(defs.queues.map((q) => q.name)).toContain('clerk.orders');
    expect((await c('delete_user', 'clerk')).code).toBe(0);
    expect((await c('delete_vhost', 'shop')).code).toBe(0);
    expect((await c('-p', 'shop', 'list', 'queues')).code).toBe(CTL_EXIT.DATA);
    const imported = await ctl(['--management-url', h.base, 'import_definitions', '/defs.json'], undefined, { '/defs.json': exported.written['/defs.json']! });
    expect([imported.code, imported.stderr]).toEqual([0, '']);
    expect((await c('-p', 'shop', 'list', 'queues')).stdout).toMatch(/clerk\.orders/);
    const again = await connect(`${h.broker.url.replace('guest:guest', 'clerk:pw2')}/shop`);
    await again.close();
    // refused input is one line with the broker's reason
    const bad = await c('-p', 'shop', 'set_permissions', 'nobody', '.*', '.*', '.*');
    expect(bad.code).toBe(CTL_EXIT.DATA);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});
