import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WarrenCluster } from './harness.js';
import { checkInvariants } from './invariants.js';
import { QUEUE, Workload } from './workload.js';

/**
 * The short high-availability run (the full one: npm run test:cluster). Three etcd members,
 * three Warren nodes (the real CLI), a confirmed persistent workload with reconnecting
 * clients; kill -9 of the leader, kill -9 of a follower, and a leader paused past its lease.
 */
describe('high availability (short run)', () => {
  let cluster: WarrenCluster;
  let workload: Workload;
  beforeAll(async () => {
    cluster = await WarrenCluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
    await workload?.stop();
  }, 60_000);

  it('loses no confirmed message through leader and follower failures, and the stores end equal', async ({ onTestFailed }) => {

    // a failure keeps the nodes' logs and prints their tails (CI keeps only its output)

    onTestFailed(() => cluster.keepForFailure());
    let leader = await cluster.settled(3);
    workload = new Workload(cluster.amqpUrls, 400);
    workload.start();
    await workload.waitConfirmed(300);

    // kill -9 of the leader: another ISR member takes over, clients reconnect and go on
    const killedAt = await cluster.kill9(leader);
    const old = leader;
    await workload.waitConfirmed(300);
    expect(workload.firstConfirmAfter(killedAt)).not.toBeNull();
    leader = await cluster.leaderOtherThan(old, 2);
    cluster.spawn(cluster.node(old));
    await cluster.settled(3);

    // kill -9 of a follower: it is evicted, confirms go on, it comes back and rejoins
    const follower = cluster.nodes.find((n) => n.id !== leader)!.id;
    await cluster.kill9(follower);
    await workload.waitConfirmed(200);
    cluster.spawn(cluster.node(follower));
    expect(await cluster.settled(3)).toBe(leader);

    // the leader paused past its lease: a client connected to it directly sees none of its
    // later publishes confirmed, and is closed with 320 once the old leader runs again
    const direct = await amqp.connect(`${cluster.amqpUrls[cluster.nodes.findIndex((n) => n.id === leader)]!}?heartbeat=0`);
    const closed = new Promise<Error | null>((resolve) => direct.on('close', (err?: Error) => resolve(err ?? null)));
    direct.on('error', () => {});
    const ch = await direct.createConfirmChannel();
    ch.on('error', () => {});
    await ch.assertQueue(QUEUE, { durable: true });
    const paused = leader;
    cluster.pause(paused);
    let lateConfirms = 0;
    for (let i = 0; i < 20; i++) {
      ch.publish('', QUEUE, Buffer.from('during pause'), { persistent: true, messageId: `pause-${i}` }, (err) => {
        if (err === null || err === undefined) lateConfirms++;
      });
    }
    await cluster.leaderOtherThan(paused, 2);
    await workload.waitConfirmed(200);
    cluster.resume(paused);
    const closeErr = await closed;
    expect(String(closeErr)).toMatch(/320|CONNECTION_FORCED/);
    expect(lateConfirms).toBe(0);
    await cluster.settled(3);
    await workload.waitConfirmed(100);

    // a client that connects to the node being promoted is served once it opens, not turned
    // away to reconnect after its own backoff: here the promotion is held up (its first
    // commit waits for an ISR member that is paused, until that one is evicted)
    leader = await cluster.settled(3);
    const [next, stalled] = cluster.nodes.map((n) => n.id).filter((id) => id !== leader) as [string, string];
    cluster.pause(stalled);
    const killed2 = await cluster.kill9(leader);
    for (const end = Date.now() + 30_000; !cluster.logs(next).some((l) => l.time >= killed2 && l.msg === 'cluster: promoting to leader'); ) {
      if (Date.now() > end) throw new Error(`${next} was not promoted`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const connectAt = Date.now();
    const during = await amqp.connect(`${cluster.amqpUrls[cluster.nodes.findIndex((n) => n.id === next)]!}?heartbeat=0`);
    during.on('error', () => {});
    const opened = cluster.logs(next).find((l) => l.time >= killed2 && l.msg === 'cluster: leader open for traffic');
    expect(opened?.time ?? Number.POSITIVE_INFINITY).toBeGreaterThan(connectAt);
    const dch = await during.createConfirmChannel();
    await dch.assertQueue(QUEUE, { durable: true });
    dch.sendToQueue(QUEUE, Buffer.from('held'), { persistent: true, messageId: 'held-1' });
    await dch.waitForConfirms();
    await during.close();
    cluster.resume(stalled);
    cluster.spawn(cluster.node(leader));
    await cluster.settled(3, 60_000);
    await workload.waitConfirmed(100);

    await workload.stop();
    await workload.drain();
    const report = await checkInvariants(cluster, workload);
    expect(report.missing).toEqual([]);
    expect(report.badDuplicates).toBe(0);
    expect(report.overlaps).toEqual([]);
    expect(new Set(report.stores.map((s) => s.digest)).size).toBe(1);
    expect(report.confirmed).toBeGreaterThan(1000);
  }, 120_000);
});
