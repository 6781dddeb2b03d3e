import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WarrenCluster, type LogLine } from './harness.js';
import { Workload } from './workload.js';

/**
 * A failover breakdown (WARREN_FAILOVER_PROBE=1): a backlog, then leader kills, each
 * timed step by step from the nodes' logs and the client.
 */
const ON = process.env.WARREN_FAILOVER_PROBE === '1';
const KILLS = Number(process.env.WARREN_PROBE_KILLS ?? 3);
const BACKLOG = Number(process.env.WARREN_HA_BACKLOG ?? 100_000);

const STEPS: [string, string][] = [
  ['leaderGone', 'cluster: leader changed'],
  ['elected', 'cluster: elected'],
  ['promoting', 'cluster: promoting to leader'],
  ['filesChecked', 'store: files checked'],
  ['storeOpened', 'store opened'],
  ['replStart', 'cluster: store open; starting replication'],
  ['termStarted', 'cluster: term started on the ISR'],
  ['recovered', 'recovered durable state'],
  ['open', 'cluster: leader open for traffic'],
];

describe.skipIf(!ON)('failover probe', () => {
  let cluster: WarrenCluster;
  let workload: Workload;
  beforeAll(async () => {
    cluster = await WarrenCluster.start({ leaseTtl: 3 });
  }, 60_000);
  afterAll(async () => {
    const t = setInterval(() => console.log(JSON.stringify({ stopping: workload?.publisherAt })), 5000);
    await workload?.stop();
    clearInterval(t);
    await cluster?.destroy();
  }, 120_000);

  it('times each failover step', async () => {
    let leader = await cluster.settled(3);
    workload = new Workload(cluster.amqpUrls, 400);
    workload.start();
    await workload.waitConfirmed(300);
    workload.consumerPaused = true;
    if (BACKLOG > 0) await workload.bulkPublish(BACKLOG);
    const rows: Record<string, number>[] = [];
    for (let i = 0; i < KILLS; i++) {
      await cluster.settled(3, 60_000);
      const victim = leader;
      const t0 = await cluster.kill9(victim);
      leader = await cluster.leaderOtherThan(victim, 1, 60_000);
      await workload.waitConfirmed(50, 60_000);
      const row: Record<string, number> = {};
      const lines: LogLine[] = cluster.logs(leader).filter((l) => l.time >= t0);
      for (const [name, msg] of STEPS) {
        const l = lines.find((x) => x.msg === msg);
        if (l !== undefined) row[name] = l.time - t0;
      }
      const ready = workload.publisherReady.find((t) => t > t0);
      if (ready !== undefined) row.clientReady = ready - t0;
      const first = workload.firstConfirmAfter(t0);
      if (first !== null) row.firstConfirm = first - t0;
      const files = lines.find((x) => x.msg === 'store: files checked');
      if (files !== undefined) row.filesCheckMs = files.ms as number;
      const rec = lines.find((x) => x.msg === 'recovered durable state');
      if (rec !== undefined) row.recoverMs = rec.ms as number;
      console.log(JSON.stringify({ kill: i, leader, ...row }));
      rows.push(row);
      cluster.spawn(cluster.node(victim));
    }
    const keys = Object.keys(rows[0] ?? {});
    const med = (k: string): number => {
      const xs = rows.map((r) => r[k]!).filter((x) => x !== undefined).sort((a, b) => a - b);
      return xs[Math.floor((xs.length - 1) / 2)]!;
    };
    console.log(JSON.stringify({ medians: Object.fromEntries(keys.map((k) => [k, med(k)])), max: Math.max(...rows.map((r) => r.firstConfirm ?? 0)) }));
    expect(rows.length).toBe(KILLS);
  }, 1_800_000);
});
