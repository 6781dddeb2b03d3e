import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import amqp from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClusterStatus, startWarren, type RunningClusterNode } from '../../src/index.js';
import { lockDataDir } from '../../src/store/dir-lock.js';
import { EtcdCluster, freePort } from './etcd-cluster.js';

const logger = pino({ level: process.env.CLUSTER_TEST_LOG ?? 'silent' });
const NAME = 'dirlock';

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a cluster node holds its data dir\'s lock, leader or follower', () => {
  let etcd: EtcdCluster;
  let root: string;
  const nodes: RunningClusterNode[] = [];
  const start = async (id: string, dataDir: string): Promise<RunningClusterNode> =>
    (await startWarren({
      host: '127.0.0.1',
      port: 0,
      dataDir,
      logger: logger.child({ node: id }),
      cluster: { etcd: etcd.endpoints, port: await freePort(), advertise: '127.0.0.1', nodeId: id, name: NAME, leaseTtl: 3, minInsync: 1, followerAckTimeout: 2000, tls: null },
    })) as RunningClusterNode;

  beforeAll(async () => {
    etcd = await EtcdCluster.start(1);
    root = await mkdtemp(join(tmpdir(), 'warren-dirlock-'));
  }, 30_000);
  afterAll(async () => {
    for (const n of nodes) await n.close().catch(() => {});
    await etcd?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('refuses a second process on the data dir of a follower and of a leader, and lets go at its stop', async () => {
    for (const id of ['n1', 'n2']) nodes.push(await start(id, join(root, id)));
    await until(() => nodes.some((n) => n.status().role === 'leader') && nodes.some((n) => n.status().role === 'follower'), 'a leader and a follower');
    const leader = nodes.find((n) => n.status().role === 'leader')!;
    const follower = nodes.find((n) => n.status().role === 'follower')!;
    const dirOf = (n: RunningClusterNode): string => join(root, n.nodeId);

    // what a second Warren process does first on a data dir: both are held
    await expect(lockDataDir(dirOf(follower))).rejects.toThrow(/is in use by another Warren process/);
    await expect(lockDataDir(dirOf(leader))).rejects.toThrow(/is in use by another Warren process/);

    // a second node on the follower's data dir is refused with that error, before it joins the cluster
    await expect(start('intruder', dirOf(follower))).rejects.toThrow(`data directory ${dirOf(follower)} is in use by another Warren process`);
    const status = await readClusterStatus(etcd.endpoints, NAME);
    expect(status.nodes.map((n) => n.id).sort()).toEqual(['n1', 'n2']);

    // the follower goes on serving: a client through it declares and publishes
    const conn = await amqp.connect(follower.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('after-intruder', { durable: true });
    ch.sendToQueue('after-intruder', Buffer.from('x'), { persistent: true });
    await ch.waitForConfirms();
    await conn.close();

    // stopped, each node lets go of its data dir
    for (const n of nodes.splice(0)) await n.close();
    for (const id of ['n1', 'n2']) {
      const lock = await lockDataDir(join(root, id));
      await lock.release();
    }
  }, 60_000);

  it('a node whose AMQP port is taken fails to start and leaves neither its cluster port nor its data dir held', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const amqpPort = (taken.address() as net.AddressInfo).port;
    const clusterPort = await freePort();
    const dataDir = join(root, 'busy-port');
    try {
      await expect(
        startWarren({
          host: '127.0.0.1',
          port: amqpPort,
          dataDir,
          logger,
          cluster: { etcd: etcd.endpoints, port: clusterPort, advertise: '127.0.0.1', nodeId: 'busy', name: NAME, leaseTtl: 3, minInsync: 1, followerAckTimeout: 2000, tls: null },
        }),
      ).rejects.toThrow(/EADDRINUSE/);
    } finally {
      taken.close();
    }
    // the cluster port is free again: something else can listen on it
    const probe = net.createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(clusterPort, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((r) => probe.close(() => r()));
    const lock = await lockDataDir(dataDir);
    await lock.release();
  }, 30_000);
});
