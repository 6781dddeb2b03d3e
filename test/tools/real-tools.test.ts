import { execFile } from 'node:child_process';
import { hostname } from 'node:os';
import { connect, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startHttpBroker, type HttpBroker } from '../management/helpers.js';

/**
 * The operators' tools, unmodified, against Warren's management API: Debian's
 * rabbitmqadmin (package rabbitmq-server) and nagios-plugins-rabbitmq. .ci/run installs them.
 */
function run(cmd: string, args: string[]): Promise<{ status: number | null; out: string }> {
  // asynchronously: the broker under test runs in this process and must keep answering
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ status, out: `${stdout}${stderr}` });
    });
  });
}

describe('real tools against the management API', { timeout: 60_000 }, () => {
  let h: HttpBroker;
  let conn: ChannelModel;
  let port: string;

  beforeAll(async () => {
    h = await startHttpBroker();
    port = String(h.broker.managementPort);
    conn = await connect(h.broker.url);
    const ch = await conn.createChannel();
    await ch.assertExchange('tools-x', 'topic', { durable: false });
    await ch.assertQueue('tools-q', { durable: false });
    await ch.bindQueue('tools-q', 'tools-x', 'a.#');
    for (let i = 0; i < 3; i++) ch.publish('tools-x', 'a.b', Buffer.from('m'));
    await ch.consume('tools-q', () => {}, { noAck: false });
    await eventually(async () => expect((await h.api('/queues/%2F/tools-q')).body.messages_unacknowledged).toBe(3));
  });
  afterAll(async () => {
    await conn.close().catch(() => {});
    await h.close();
  });

  const admin = (...args: string[]) => run('rabbitmqadmin', ['-H', '127.0.0.1', '-P', port, '-u', 'guest', '-p', 'guest', ...args]);

  it('rabbitmqadmin lists queues, exchanges, bindings, connections, channels, consumers, nodes and vhosts', async () => {
    const queues = await admin('-f', 'tsv', 'list', 'queues', 'name', 'messages', 'messages_unacknowledged', 'consumers');
    expect(queues.status).toBe(0);
    expect(queues.out).toContain('tools-q\t3\t3\t1');
    const exchanges = await admin('-f', 'tsv', 'list', 'exchanges', 'name', 'type');
    expect(exchanges.out).toContain('tools-x\ttopic');
    const bindings = await admin('-f', 'tsv', 'list', 'bindings', 'source', 'destination', 'routing_key');
    expect(bindings.out).toContain('tools-x\ttools-q\ta.#');
    expect((await admin('-f', 'tsv', 'list', 'connections', 'user', 'state')).out).toContain('guest\trunning');
    expect((await admin('-f', 'tsv', 'list', 'channels', 'user', 'consumer_count')).out).toContain('guest\t1');
    expect((await admin('-f', 'tsv', 'list', 'consumers', 'queue.name', 'ack_required')).out).toContain('tools-q\tTrue');
    expect((await admin('-f', 'tsv', 'list', 'nodes', 'name')).out).toContain(`rabbit@${hostname().split('.')[0]}`);
    expect((await admin('-f', 'tsv', 'list', 'vhosts', 'name')).out).toContain('/');
    const overview = await admin('-f', 'tsv', 'show', 'overview');
    expect(overview.status).toBe(0);
    expect(overview.out).toMatch(/\n[^\t]+\trabbit@[^\t]+\t3\t1/);
  });

  it('rabbitmqadmin declares, binds, publishes, gets, purges and deletes, and exports and imports definitions', async () => {
    const ok = async (...args: string[]) => {
      const r = await admin(...args);
      expect([args.join(' '), r.status, r.out]).toEqual([args.join(' '), 0, expect.any(String)]);
      return r.out;
    };
    expect(await ok('declare', 'vhost', 'name=tools-vh')).toMatch(/vhost declared/);
    expect(await ok('declare', 'user', 'name=tools-user', 'password=pw', 'tags=management')).toMatch(/user declared/);
    expect(await ok('declare', 'permission', 'vhost=tools-vh', 'user=tools-user', 'configure=.*', 'write=.*', 'read=.*')).toMatch(/permission declared/);
    expect(await ok('declare', 'exchange', 'name=adm-x', 'type=direct', 'durable=false')).toMatch(/exchange declared/);
    expect(await ok('declare', 'queue', 'name=adm-q', 'durable=false', 'arguments={"x-message-ttl":60000}')).toMatch(/queue declared/);
    expect(await ok('declare', 'binding', 'source=adm-x', 'destination=adm-q', 'routing_key=k')).toMatch(/binding declared/);
    expect(await ok('publish', 'exchange=adm-x', 'routing_key=k', 'payload=hello from rabbitmqadmin')).toMatch(/Message published/);
    expect(await ok('-f', 'tsv', 'get', 'queue=adm-q', 'ackmode=ack_requeue_true')).toContain('hello from rabbitmqadmin');
    expect(await ok('declare', 'policy', 'name=adm-p', 'pattern=^adm-', 'definition={"max-length":10}', 'apply-to=queues')).toMatch(/policy declared/);
    expect(await ok('-f', 'tsv', 'list', 'policies', 'name', 'pattern')).toContain('adm-p\t^adm-');
    expect(await ok('-f', 'tsv', 'list', 'users', 'name')).toContain('tools-user');
    expect(await ok('purge', 'queue', 'name=adm-q')).toMatch(/queue purged/);
    expect(await ok('delete', 'binding', 'source=adm-x', 'destination_type=queue', 'destination=adm-q', 'properties_key=k')).toMatch(/binding deleted/);
    expect(await ok('export', '/tmp/warren-tools-defs.json')).toMatch(/Exported definitions/);
    expect(await ok('import', '/tmp/warren-tools-defs.json')).toMatch(/Uploaded definitions/);
    expect(await ok('delete', 'queue', 'name=adm-q')).toMatch(/queue deleted/);
    expect(await ok('delete', 'exchange', 'name=adm-x')).toMatch(/exchange deleted/);
    expect(await ok('delete', 'policy', 'name=adm-p')).toMatch(/policy deleted/);
    expect(await ok('delete', 'user', 'name=tools-user')).toMatch(/user deleted/);
    expect(await ok('delete', 'vhost', 'name=tools-vh')).toMatch(/vhost deleted/);
    // an error is reported with RabbitMQ's reason
    const dup = await admin('declare', 'queue', 'name=tools-q', 'durable=true');
    expect(dup.status).not.toBe(0);
    expect(dup.out).toMatch(/inequivalent arg 'durable'/);
  });

  it('rabbitmqadmin reports refused credentials', async () => {
    const r = await run('rabbitmqadmin', ['-H', '127.0.0.1', '-P', port, '-u', 'guest', '-p', 'wrong', 'list', 'queues']);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/Access refused|401/);
  });

  const nagios = (check: string, ...args: string[]) => run(`check_rabbitmq_${check}`, ['-H', '127.0.0.1', '--port', port, ...args]);

  it('the nagios plugins check aliveness, server, watermark, overview, connections, objects and a queue', async () => {
    const node = hostname().split('.')[0]!;
    const checks: Array<[string, string[], RegExp]> = [
      ['aliveness', [], /^RABBITMQ_ALIVENESS OK - vhost: \//],
      ['server', ['--node', node], /^RABBITMQ_SERVER OK - Memory OK .* Sockets OK/],
      ['watermark', ['--node', node], /^RABBITMQ_WATERMARK OK - mem_alarm disk_free_alarm/],
      ['overview', [], /^RABBITMQ_OVERVIEW OK - messages OK \(3\) messages_ready OK \(0\) messages_unacknowledged OK \(3\)/],
      ['connections', [], /^RABBITMQ_CONNECTIONS OK - connections OK \(1\) connections_notrunning OK \(0\)/],
      ['objects', [], /^RABBITMQ_OBJECTS OK - Gathered Object Counts .*queue=\d+/],
      ['queue', ['--queue', 'tools-q'], /^RABBITMQ_QUEUE OK - messages OK \(3\) messages_ready OK \(0\) messages_unacknowledged OK \(3\) consumers OK \(1\)/],
    ];
    for (const [check, args, expected] of checks) {
      const r = await nagios(check, ...args);
      expect([check, r.status, r.out]).toEqual([check, 0, expect.stringMatching(expected)]);
    }
    // a threshold crossed is reported as such, and a missing queue as critical
    expect((await nagios('queue', '--queue', 'tools-q', '-w', '1,1,1,1', '-c', '2,2,2,2')).status).toBe(2);
    expect((await nagios('queue', '--queue', 'nope')).status).toBe(2);
    // the plugins send credentials only after RabbitMQ's realm challenge: wrong ones are refused
    expect((await nagios('aliveness', '-p', 'wrong')).out).toMatch(/Access refused/i);
  });
});
