import { once } from 'node:events';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCoordinator, readClusterStatus } from '../../src/cluster/etcd-coordinator.js';
import { EtcdCluster } from './etcd-cluster.js';

const logger = pino({ level: 'silent' });

function coordinator(etcd: EtcdCluster, id: string, cluster: string): EtcdCoordinator {
  return new EtcdCoordinator({
    endpoints: etcd.endpoints,
    clusterName: cluster,
    nodeId: id,
    candidate: { id, amqp: `127.0.0.1:${id}`, cluster: `127.0.0.1:c${id}` },
    leaseTtl: 2,
    keepaliveMs: 300,
    marginMs: 300,
    logger,
  });
}

/** keys (and values) under a prefix, through the JSON gateway */
async function readKeys(etcd: EtcdCluster, prefix: string): Promise<Record<string, string>> {
  const b64 = (x: string): string => Buffer.from(x).toString('base64');
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const res = await fetch(`${etcd.endpoints[0]}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64(prefix), range_end: b64(end) }) });
  const j = (await res.json()) as { kvs?: { key: string; value: string }[] };
  return Object.fromEntries((j.kvs ?? []).map((kv) => [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64').toString()]));
}

describe('EtcdCoordinator', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await EtcdCluster.start(3);
  }, 30_000);
  afterAll(async () => etcd?.stop());

  it('leaves no candidacy behind when it resigns while campaigns are in flight, and can stand again', async () => {
    const a = coordinator(etcd, 'a', 'race');
    await a.start();
    try {
      // two checks campaign at once, then the node resigns before their txns answer
      const first = a.campaign();
      const second = a.campaign();
      const resigned = a.resign();
      await Promise.all([first, second, resigned]);
      expect(a.term).toBe(0);
      expect(Object.keys(await readKeys(etcd, '/warren/race/election/'))).toEqual([]);
      // standing again works: the candidacy exists here and in etcd, and wins
      const elected = once(a, 'elected');
      await a.campaign();
      await elected;
      expect(a.term).toBeGreaterThan(0);
      expect(Object.keys(await readKeys(etcd, '/warren/race/election/'))).toHaveLength(1);
    } finally {
      await a.close();
    }
  });

  it('stands again when its candidacy disappears from etcd behind its back', async () => {
    const a = coordinator(etcd, 'a', 'vanish');
    const b = coordinator(etcd, 'b', 'vanish');
    await Promise.all([a.start(), b.start()]);
    try {
      const elected = once(a, 'elected');
      await a.campaign();
      await elected;
      await b.campaign();
      const [bKey] = Object.entries(await readKeys(etcd, '/warren/vanish/election/')).filter(([, v]) => JSON.parse(v).id === 'b').map(([k]) => k);
      expect(bKey).toBeDefined();
      // b's key is deleted by someone else: b notices at its next full read, and its next
      // campaign (cluster-node checks every second) puts a new one
      await fetch(`${etcd.endpoints[0]}/v3/kv/deleterange`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(bKey!).toString('base64') }) });
      const bTerm = b.term;
      for (const end = Date.now() + 10_000; !(b.term > bTerm); ) {
        if (Date.now() > end) throw new Error(`b did not stand again (term ${b.term})`);
        await b.campaign();
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(Object.keys(await readKeys(etcd, '/warren/vanish/election/'))).toHaveLength(2);
      // and takes over when a goes
      const bElected = once(b, 'elected');
      await a.resign();
      await bElected;
      expect(b.isLeader()).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('elects the oldest candidate, fences the ISR on its lease, and hands over on resign', async () => {
    const a = coordinator(etcd, 'a', 'elect');
    const b = coordinator(etcd, 'b', 'elect');
    await Promise.all([a.start(), b.start()]);
    try {
      expect(a.secret.length).toBe(32);
      expect(b.secret.equals(a.secret)).toBe(true);
      const elected = once(a, 'elected');
      await a.campaign();
      await elected;
      await b.campaign();
      expect(a.isLeader()).toBe(true);
      expect(b.isLeader()).toBe(false);
      expect(b.currentLeader()?.id).toBe('a');
      expect(a.term).toBeGreaterThan(0);
      expect(b.term).toBeGreaterThan(a.term);

      expect(await a.writeIsr(['a', 'b'])).toBe(true);
      expect(await b.writeIsr(['b'])).toBe(false);
      await a.register({ id: 'a', amqp: '127.0.0.1:1', cluster: '127.0.0.1:2', role: 'leader' });
      await b.register({ id: 'b', amqp: '127.0.0.1:3', cluster: '127.0.0.1:4', role: 'follower' });
      const status = await readClusterStatus(etcd.endpoints, 'elect');
      expect(status).toMatchObject({ leader: 'a', isr: ['a', 'b'] });
      expect(status.nodes.map((n) => [n.id, n.role])).toEqual([['a', 'leader'], ['b', 'follower']]);

      const bElected = once(b, 'elected');
      const oldTerm = a.term;
      await a.resign();
      await bElected;
      expect(b.isLeader()).toBe(true);
      expect(b.term).toBeGreaterThan(oldTerm);
      expect(await b.writeIsr(['b'])).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 20_000);

  it('gives up its leadership at once when etcd answers that its lease is gone, before its deadline', async () => {
    const a = coordinator(etcd, 'a', 'revoked');
    await a.start();
    try {
      const elected = once(a, 'elected');
      await a.campaign();
      await elected;
      // the lease revoked behind its back (as when etcd expired it): the next keepalive says so
      const [key] = Object.keys(await readKeys(etcd, '/warren/revoked/election/'));
      const res = await fetch(`${etcd.endpoints[0]}/v3/lease/revoke`, { method: 'POST', body: JSON.stringify({ ID: BigInt(`0x${key!.split('/').pop()!}`).toString() }) });
      expect(res.ok).toBe(true);
      await once(a, 'expired');
      expect(a.isLeader()).toBe(false);
      expect(performance.now()).toBeLessThan(a.leaseDeadline);
    } finally {
      await a.close();
    }
  }, 20_000);

  it('keeps a lease deadline that runs out before etcd can expire the lease when etcd is unreachable', async () => {
    const a = coordinator(etcd, 'a', 'deadline');
    await a.start();
    try {
      const elected = once(a, 'elected');
      await a.campaign();
      await elected;
      expect(a.leaseValid()).toBe(true);
      // every etcd member paused: no keepalive answers, the deadline must pass by itself
      const t0 = performance.now();
      for (const m of etcd.members) etcd.pause(m.name);
      try {
        await once(a, 'expired');
      } finally {
        for (const m of etcd.members) etcd.resume(m.name);
      }
      expect(a.isLeader()).toBe(false);
      // the last answered keepalive was sent before the pause: the deadline lies before
      // the earliest moment etcd could expire the lease (TTL 2 s after that)
      expect(a.leaseDeadline).toBeLessThanOrEqual(t0 + 2000 - 300);
    } finally {
      await a.close();
    }
  }, 20_000);
});
