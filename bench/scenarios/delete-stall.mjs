// Deleting a big durable queue while another queue's publisher waits for confirms.
// A producer fills a durable queue with --count (default 300,000) persistent 16 B messages
// with confirms (window 256). A bystander then publishes a persistent message with
// confirms to its own durable queue every 5 ms, one at a time, for 10 s (the baseline);
// then the big queue is deleted (queue.delete on another connection, timed until
// delete-ok), and the bystander goes on for 10 s from the delete (at least 2 s after
// delete-ok). The window after the delete is that long because a broker may delete in the
// background after delete-ok: Warren removes 300,000 entries in about 8 s on the 2-core
// bench machine, and a shorter window would leave most of that work unmeasured. Both
// windows are equally long, so neither's longest wait is favoured by having more samples.
// Reports the queue.delete round trip and the bystander's longest confirm wait during the
// delete (any wait that overlaps it, so a message sent just before and held up by the
// delete counts) against its longest in the baseline (waits that ended before it), and the
// same for the 99th percentile, which one slow disk sync moves less. Verified: delete-ok
// reports every confirmed message, and the bystander's messages are drained and checked.
// `purge-stall` is the same with queue.purge in place of queue.delete (purge-ok must report
// every message, and the purged queue is deleted afterwards, outside the figures).
import { ClientGroup } from '../lib/client-thread.mjs';
import { ConfirmProbe } from '../lib/confirm-probe.mjs';
import { ProcSampler } from '../lib/proc-stats.mjs';
import { RawConnection } from '../lib/raw-amqp.mjs';
import { deleteQueue, freshQueue, queueName, rate, sleep } from './common.mjs';

/** the baseline, and the least the window from the delete lasts */
const BASELINE_MS = 10_000;
/** the least the window lasts after delete-ok */
const AFTER_MS = 2000;
const SLICE_MS = 500;
const DELETE_TIMEOUT_MS = 300_000;

function stallScenario(op) {
  const what = op === 'purge' ? 'purge' : 'delete';
  return {
    name: `${what}-stall`,
    description: `${what} a durable queue of N (300k) persistent messages while a bystander publishes with confirms: its longest wait`,
    defaults: { count: 300_000, size: 16, persistent: true, confirm: 256, probeInterval: 5 },
    metrics: [
      { key: 'stallExcessMs', label: `bystander: longest confirm wait during the ${what} − longest in the baseline (ms)`, better: 'lower' },
      { key: 'stallMaxMs', label: `bystander: longest confirm wait during the ${what} (ms)`, better: 'lower' },
      { key: 'baselineMaxMs', label: `bystander: longest confirm wait in the ${BASELINE_MS / 1000} s before (ms)`, better: 'lower' },
      { key: 'stallP99Ms', label: `bystander: confirm wait p99 during the ${what} (ms)`, better: 'lower' },
      { key: 'baselineP99Ms', label: 'bystander: confirm wait p99 before (ms)', better: 'lower' },
      { key: 'baselineP50Ms', label: 'bystander: confirm wait p50 before (ms)', better: 'lower' },
      { key: 'deleteMs', label: `queue.${what} round trip (ms)`, better: 'lower' },
      { key: 'fillRate', label: 'fill rate, confirmed (msg/s)', better: 'higher' },
    ],
    run: (o, broker, log) => runDeleteStall(o, broker, log, what),
  };
}

export const deleteStall = stallScenario('delete');
export const purgeStall = stallScenario('purge');

function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

async function runDeleteStall(o, broker, log, what) {
  const queue = queueName(`${what}-stall`);
  const N = o.count;
  await freshQueue(o.url, queue, true);
  const producers = new ClientGroup(1);
  const probe = new ConfirmProbe({ url: o.url, queue: `${queue}-bystander`, intervalMs: o.probeInterval });
  let probeOpen = false;
  try {
    const producer = await producers.add('producer', { url: o.url, size: o.size, client: o.client, id: 0, exchange: '', routingKey: queue, persistent: true, confirm: o.confirm, rate: 0 });
    log(`${what}-stall: filling a durable queue with ${N.toLocaleString('en-US')} persistent ${o.size} B messages (confirm window ${o.confirm})…`);
    const runMs = o.timeout * 1000;
    const ran = await producer.send({ type: 'run', count: N, deadlineEpoch: performance.timeOrigin + performance.now() + runMs }, 'ran', runMs + 90_000);
    await producers.stopAll();
    if (ran.error !== null || ran.confirmed < N) throw new Error(`fill failed: ${ran.error ?? `${ran.confirmed} of ${N} confirmed`}`);
    const fillRate = rate(ran.confirmed, ran.confirmedAt - ran.started);
    log(`  ${ran.confirmed.toLocaleString('en-US')} confirmed at ${fillRate} msg/s; bystander publishing with confirms every ${o.probeInterval} ms, ${BASELINE_MS / 1000} s baseline, then queue.${what}…`);

    await probe.open();
    probeOpen = true;
    const admin = await RawConnection.open(o.url);
    admin.onError = () => {};
    const sampler = new ProcSampler(broker.pid).start();
    const t0 = performance.now();
    probe.start();
    await sleep(BASELINE_MS);
    const d0 = performance.now();
    let deleted = null;
    let deleteError = null;
    try {
      const request = what === 'purge' ? admin.purgeQueue(queue) : admin.deleteQueue(queue);
      deleted = (await withTimeout(request, DELETE_TIMEOUT_MS, `queue.${what}`)).messageCount;
    } catch (err) {
      deleteError = err.message;
    }
    const d1 = performance.now();
    await sleep(Math.max(AFTER_MS, BASELINE_MS - (d1 - d0)));
    const end = performance.now();
    await probe.stop();
    const brokerStats = sampler.stop();
    // the purged queue (empty now) goes, outside the figures
    if (what === 'purge' && deleteError === null) await withTimeout(admin.deleteQueue(queue), DELETE_TIMEOUT_MS, 'queue.delete').catch(() => {});
    await admin.close();
    const baseline = probe.stats(t0, d0, { completed: true });
    const during = probe.stats(d0, end);
    const probeVerdict = await probe.verifyAndClose();
    probeOpen = false;
    const deleteMs = deleteError === null ? Math.round(d1 - d0) : null;
    log(`  queue.${what} took ${deleteMs ?? deleteError} ms (${deleted ?? 'n/a'} messages); bystander's longest confirm wait: ${during.maxMs} ms during, ${baseline.maxMs} ms before`);

    const verification = { ...probeVerdict, deletedReported: deleted };
    if (deleteError !== null) {
      verification.ok = false;
      verification.clientError = deleteError;
    } else if (deleted !== N) {
      verification.ok = false;
      verification.firstError ??= `queue.${what}-ok reported ${deleted} messages, ${N} were confirmed`;
    }
    return {
      metrics: {
        stallExcessMs: during.maxMs === null || baseline.maxMs === null ? null : Math.round((during.maxMs - baseline.maxMs) * 10) / 10,
        stallMaxMs: during.maxMs,
        baselineMaxMs: baseline.maxMs,
        baselineP50Ms: baseline.p50Ms,
        stallP99Ms: during.p99Ms,
        baselineP99Ms: baseline.p99Ms,
        deleteMs,
        fillRate,
      },
      phases: {
        fill: { confirmed: ran.confirmed, seconds: (ran.confirmedAt - ran.started) / 1000 },
        bystander: {
          baseline,
          during,
          sent: probe.sent,
          confirmed: probe.confirmed,
          // longest wait per slice from the baseline's start (the delete is at baselineMs)
          sliceMs: SLICE_MS,
          baselineMs: Math.round(d0 - t0),
          maxBySlice: probe.maxBySlice(t0, SLICE_MS, Math.ceil((end - t0) / SLICE_MS)),
        },
        delete: { deleteMs, deleted, error: deleteError, broker: brokerStats },
      },
      latency: null,
      verification,
    };
  } catch (err) {
    await producers.stopAll();
    if (probeOpen) {
      await probe.stop(5000);
      await probe.verifyAndClose(5000).catch(() => {});
    }
    await deleteQueue(o.url, queue);
    throw err;
  }
}
