import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarren, type RunningClusterNode } from '../../src/index.js';
import { EtcdCluster, freePort } from './etcd-cluster.js';

const logger = pino({ level: process.env.CLUSTER_TEST_LOG ?? 'silent' });

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('cluster nodes in one process', () => {
  let etcd: EtcdCluster;
  let root: string;
  const nodes: RunningClusterNode[] = [];
  /** each node's management and metrics ports (served by the leader only) */
  const http = new Map<RunningClusterNode, { management: number; metrics: number }>();
  beforeAll(async () => {
    etcd = await EtcdCluster.start(1);
    root = await mkdtemp(join(tmpdir(), 'warren-nodes-'));
  }, 30_000);
  afterAll(async () => {
    for (const n of nodes) await n.close().catch(() => {});
    await etcd?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('elects a leader, replicates through a follower\'s proxy, and reports status', async () => {
    for (const id of ['n1', 'n2', 'n3']) {
      const ports = { management: await freePort(), metrics: await freePort() };
      const n = (await startWarren({
        host: '127.0.0.1',
        port: 0,
        managementPort: ports.management,
        metricsPort: ports.metrics,
        dataDir: join(root, id),
        logger: logger.child({ node: id }),
        cluster: { etcd: etcd.endpoints, port: await freePort(), advertise: '127.0.0.1', nodeId: id, name: 'smoke', leaseTtl: 3, minInsync: 1, followerAckTimeout: 2000, tls: null },
      })) as RunningClusterNode;
      nodes.push(n);
      http.set(n, ports);
    }
    await until(() => nodes.some((n) => n.status().role === 'leader'), 'a leader');
    const leader = nodes.find((n) => n.status().role === 'leader')!;
    await until(() => leader.status().isr.length === 3, 'ISR of 3');
    const follower = nodes.find((n) => n !== leader)!;
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${follower.port}`);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('q1', { durable: true });
    for (let i = 0; i < 100; i++) ch.sendToQueue('q1', Buffer.from(`m${i}`), { persistent: true });
    await ch.waitForConfirms();
    const ok = await ch.checkQueue('q1');
    expect(ok.messageCount).toBe(100);
    await conn.close();
    const s = leader.status();
    expect(s.replication?.role).toBe('leader');
    await until(() => nodes.every((n) => n.status().replication !== null && (n.status().replication as { appliedSeq: number }).appliedSeq >= (s.replication as { commitSeq: number }).commitSeq), 'followers applied');

    // the management API and the metrics (on the leader) show each node's role and replication lag
    const ports = http.get(leader)!;
    const auth = { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` };
    await until(async () => {
      const f = (await (await fetch(`http://127.0.0.1:${ports.management}/api/nodes`, { headers: auth })).json()) as Array<{ warren_cluster: { followers: Array<{ replication_lag: number }> } }>;
      return f[0]!.warren_cluster.followers.every((x) => x.replication_lag === 0);
    }, 'followers acked everything');
    const [node] = (await (await fetch(`http://127.0.0.1:${ports.management}/api/nodes`, { headers: auth })).json()) as Array<Record<string, any>>;
    expect(node!.cluster_role).toBe('leader');
    expect(node!.replication_lag).toBe(0);
    const followerIds = nodes.filter((n) => n !== leader).map((n) => n.nodeId).sort();
    expect(node!.warren_cluster).toMatchObject({ node_id: leader.nodeId, role: 'leader', leader: leader.nodeId, term: s.term });
    expect([...node!.warren_cluster.isr].sort()).toEqual(['n1', 'n2', 'n3']);
    expect(node!.warren_cluster.followers.map((f: { node_id: string }) => f.node_id).sort()).toEqual(followerIds);
    for (const f of node!.warren_cluster.followers) expect(f).toMatchObject({ connected: true, in_sync: true, replication_lag: 0, acked_seq: node!.warren_cluster.commit_seq });
    const metrics = await (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text();
    expect(metrics).toContain(`warren_cluster_role{node_id="${leader.nodeId}",role="leader"} 1`);
    expect(metrics).toContain(`warren_cluster_role{node_id="${leader.nodeId}",role="follower"} 0`);
    expect(metrics).toContain('warren_cluster_isr_members 3');
    expect(metrics).toContain('warren_cluster_replication_lag_records 0');
    for (const id of followerIds) {
      expect(metrics).toContain(`warren_cluster_follower_in_sync{follower="${id}"} 1`);
      expect(metrics).toContain(`warren_cluster_follower_replication_lag_records{follower="${id}"} 0`);
    }
    // followers serve neither
    await expect(fetch(`http://127.0.0.1:${http.get(follower)!.metrics}/metrics`)).rejects.toThrow();
  }, 60_000);
});
