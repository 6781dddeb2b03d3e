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
