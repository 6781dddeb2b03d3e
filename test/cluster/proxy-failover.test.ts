import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WarrenCluster } from './harness.js';

/**
 * Clients connecting through followers while the leader has just died (kill -9) and its
 * lease still runs: the followers know only the dead leader, whose port refuses them. The
 * clients' connections are kept until the next leader opens, and then served: by the new
 * leader itself for the client that connected to it, through its proxy for the other.
 */
describe('connecting through a follower during a failover', () => {
  let cluster: WarrenCluster;
  beforeAll(async () => {
    cluster = await WarrenCluster.start({ etcdMembers: 1 });
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
  }, 60_000);

  it('a client connecting while the dead leader\'s lease runs is served by the next leader, not closed', async ({ onTestFailed }) => {

    // a failure keeps the nodes' logs and prints their tails (CI keeps only its output)

    onTestFailed(() => cluster.keepForFailure());
    const dead = await cluster.settled(3);
    const followers = cluster.nodes.filter((n) => n.id !== dead);
    const killedAt = await cluster.kill9(dead);
    // the precondition: etcd still names the dead node leader (its lease has not run out)
    expect((await cluster.status()).leader).toBe(dead);

    const conns = await Promise.all(followers.map((f) => amqp.connect(`amqp://guest:guest@127.0.0.1:${f.amqpPort}?heartbeat=0`)));
    for (const c of conns) c.on('error', () => {});
    const leader = await cluster.leaderOtherThan(dead, 1);
    for (const [i, conn] of conns.entries()) {
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue('proxy-failover', { durable: true });
      ch.sendToQueue('proxy-failover', Buffer.from(`through ${followers[i]!.id}`), { persistent: true });
      await ch.waitForConfirms();
    }
    const check = await (await conns[0]!.createChannel()).checkQueue('proxy-failover');
    expect(check.messageCount).toBe(2);
    const clientPorts = conns.map((c) => (c as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort);
    for (const c of conns) await c.close();

    // the new leader saw each client's own address (the PROXY header sent again with the retry)
    const peers = (): unknown[] => cluster.logs(leader).filter((l) => l.time >= killedAt && l.msg === 'connection closed').map((l) => l.peer);
    for (let end = Date.now() + 10_000; !clientPorts.every((p) => peers().includes(`127.0.0.1:${p}`)); ) {
      if (Date.now() > end) throw new Error(`the leader logged peers ${JSON.stringify(peers())}, not the clients' ${JSON.stringify(clientPorts)}`);
      await new Promise((r) => setTimeout(r, 20));
    }

    // each client waited in its follower for the failover: the new leader served its own
    // client once promoted, the other follower forwarded its client to the new leader
    const waited = (id: string): string[] =>
      cluster
        .logs(id)
        .filter((l) => l.time >= killedAt && (l.msg === 'cluster: a forwarded client is served here after a failover' || l.msg === 'cluster: a forwarded client reached the leader after a failover'))
        .map((l) => l.msg);
    expect(waited(leader)).toEqual(['cluster: a forwarded client is served here after a failover']);
    const other = followers.find((f) => f.id !== leader)!.id;
    expect(waited(other)).toEqual(['cluster: a forwarded client reached the leader after a failover']);
  }, 90_000);
});
