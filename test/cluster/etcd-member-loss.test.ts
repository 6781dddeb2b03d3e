import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WarrenCluster } from './harness.js';
import { Workload } from './workload.js';

const LEASE_TTL = 3;
const KILLS = 5;

/**
 * Losing one etcd member of three (the raft leader, each time) must not stop Warren: no
 * failover, and confirms go on. etcd runs with a 2 s election timeout here, so each of its
 * elections takes 2-4 s: longer than a Warren leader's lease deadline lasts after its last
 * renewal (about TTL - 0.3 s), as etcd's elections under load or with a raised election
 * timeout can. No lease can be renewed while etcd has no leader; the Warren leader must pause
 * its confirms past its deadline, not give up its leadership, and resume once etcd renews it.
 */
describe('etcd member loss', () => {
  let cluster: WarrenCluster;
  let workload: Workload;
  beforeAll(async () => {
    cluster = await WarrenCluster.start({ leaseTtl: LEASE_TTL, etcdElectionTimeoutMs: 2000 });
  }, 60_000);
  afterAll(async () => {
    await workload?.stop();
    await cluster?.destroy();
  }, 60_000);

  it('keeps the Warren leader and its confirms through repeated losses of the etcd raft leader', async ({ onTestFailed }) => {

    // a failure keeps the nodes' logs and prints their tails (CI keeps only its output)

    onTestFailed(() => cluster.keepForFailure());
    const leader = await cluster.settled(3);
    const { term } = await cluster.status();
    workload = new Workload(cluster.amqpUrls, 400);
    workload.start();
    await workload.waitConfirmed(300);
    const from = Date.now();
    const gaps: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      const member = (await cluster.etcd.raftLeader()) ?? cluster.etcd.members[i % 3]!.name;
      const t0 = Date.now();
      cluster.etcd.kill(member);
      // etcd elects another raft leader among the two left, then confirms go on
      for (let found = false; !found; ) {
        const next = await cluster.etcd.raftLeader();
        found = next !== null && next !== member;
        if (Date.now() - t0 > 20_000) throw new Error('etcd elected no new leader');
        if (!found) await new Promise((r) => setTimeout(r, 100));
      }
      await workload.waitConfirmed(200, 20_000);
      gaps.push(workload.longestConfirmGap(t0, Date.now()));
      cluster.etcd.restart(member);
      await cluster.etcd.waitMemberServing(member);
    }
    // no failover: the same leader, in the same term, never stepped down
    expect(await cluster.status()).toMatchObject({ leader, term });
    const stepDowns = cluster.nodes.flatMap((n) => cluster.logs(n.id).filter((l) => l.time >= from && l.msg === 'cluster: stepping down'));
    expect(stepDowns).toEqual([]);
    // a pause of confirms while etcd has no leader, never as long as the lease TTL
    for (const gap of gaps) expect(gap).toBeLessThan(LEASE_TTL * 1000);
  }, 120_000);
});
