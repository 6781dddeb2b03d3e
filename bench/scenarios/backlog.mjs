// The backlog scenario: publish N persistent messages to a durable queue with publisher
// confirms, measure the broker's memory with the whole backlog stored, restart the broker
// (when the runner manages it) and time its recovery, then drain with one consumer and
// check that the drain rate stays steady from the first to the last 10 %.
import { Consumer } from '../lib/consumer.mjs';
import { ProcSampler, readProc } from '../lib/proc-stats.mjs';
import { closeAll, deleteQueue, firstError, freshQueue, openProducers, queueName, rate, share, sleep } from './common.mjs';

export const backlog = {
  name: 'backlog',
  description: 'publish N persistent messages with confirms, RSS at full backlog, restart time, drain with one consumer',
  defaults: { count: 100_000, persistent: true, confirm: 256, prefetch: 500 },
  adjust(o, explicit) {
    // Ack in batches with multiple=true, half a prefetch window at a time, unless told otherwise.
    if (explicit.ackEvery === undefined) o.ackEvery = Math.max(1, Math.floor(o.prefetch / 2));
    o.noAck = false;
    o.consumers = 1;
  },
  metrics: [
    { key: 'publishRate', label: 'publish rate, confirmed (msg/s)', better: 'higher' },
    { key: 'rssFullBacklogMiB', label: 'broker RSS at full backlog (MiB)', better: 'lower' },
    { key: 'restartAcceptMs', label: 'restart until connection accepted (ms)', better: 'lower' },
    { key: 'restartReadyMs', label: 'restart until queue reports N (ms)', better: 'lower' },
    { key: 'drainRate', label: 'drain rate, 1 consumer (msg/s)', better: 'higher' },
    { key: 'drainSteadiness', label: 'drain slowest/fastest 10% slice', better: 'higher' },
    { key: 'rssAfterDrainMiB', label: 'broker RSS after drain (MiB)', better: 'lower' },
  ],
  run: runBacklog,
};

async function runBacklog(o, broker, log) {
  const partial = { metrics: {}, phases: {} };
  try {
    return await backlogPhases(o, broker, log, partial);
  } catch (err) {
    // Report what was measured before the failure, and leave no backlog behind.
    await deleteQueue(o.url, queueName('backlog'));
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { partial });
  }
}

async function backlogPhases(o, broker, log, { metrics, phases }) {
  const queue = queueName('backlog');
  const N = o.count;
  const deadline = performance.now() + o.timeout * 1000;
  await freshQueue(o.url, queue, true);

  // Phase 1: publish with confirms.
  log(`publishing ${N} persistent messages of ${o.size} B with a confirm window of ${o.confirm}…`);
  const { producers, verifier } = await openProducers(o, queue);
  let sampler = new ProcSampler(broker.pid).start();
  const runs = await Promise.all(producers.map((p, i) => p.run(share(N, producers.length, i), deadline)));
  const pubStats = sampler.stop();
  const started = Math.min(...runs.map((r) => r.started));
  const confirmedAt = Math.max(...runs.map((r) => r.confirmedAt));
  const published = producers.map((p) => p.published);
  const confirmed = producers.reduce((n, p) => n + p.confirmed, 0);
  const nacked = producers.reduce((n, p) => n + p.nacked, 0);
  const pubError = firstError(producers);
  await closeAll(producers);
  metrics.publishRate = rate(confirmed, confirmedAt - started);
  // Broker RSS at each tenth of the publish phase: does memory grow with the backlog?
  const pubSampler = sampler;
  const rssByTenth = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((k) => pubSampler.rssAt(started + ((confirmedAt - started) * k) / 10));
  phases.publish = { published: published.reduce((a, b) => a + b, 0), confirmed, nacked, seconds: (confirmedAt - started) / 1000, rate: metrics.publishRate, broker: pubStats, rssMiBByTenth: rssByTenth, error: pubError?.message ?? null };
  log(`  ${confirmed} confirmed in ${phases.publish.seconds.toFixed(1)} s: ${metrics.publishRate} msg/s; broker RSS (MiB) per 10 %: ${rssByTenth.join(' ')}`);
  if (pubError !== null || confirmed + nacked < N) throw new Error(`publish failed: ${pubError?.message ?? 'not every message confirmed in time'}`);

  // Phase 2: memory with the full backlog, after a short idle so group commits and GC settle.
  await sleep(o.settle * 1000);
  const atBacklog = readProc(broker.pid);
  metrics.rssFullBacklogMiB = atBacklog === null ? null : Math.round(atBacklog.rssMiB);
  phases.fullBacklog = atBacklog === null ? { rssMiB: null } : { rssMiB: metrics.rssFullBacklogMiB, rssAnonMiB: Math.round(atBacklog.rssAnonMiB), rssFileMiB: Math.round(atBacklog.rssFileMiB), peakRssMiB: Math.round(atBacklog.hwmMiB) };
  log(`  broker RSS at full backlog: ${metrics.rssFullBacklogMiB ?? 'n/a'} MiB (anon ${phases.fullBacklog.rssAnonMiB ?? 'n/a'}, file-backed ${phases.fullBacklog.rssFileMiB ?? 'n/a'})`);

  // Phase 3: restart.
  if (o.restart && broker.canRestart) {
    log(`restarting the broker (${broker.restartNote})…`);
    const r = await broker.restart(queue, N, Math.max(1000, deadline - performance.now()));
    await sleep(o.settle * 1000);
    const after = readProc(broker.pid);
    metrics.restartAcceptMs = Math.round(r.acceptMs);
    metrics.restartReadyMs = Math.round(r.readyMs);
    phases.restart = { method: broker.restartNote, acceptMs: metrics.restartAcceptMs, readyMs: metrics.restartReadyMs, reported: r.reported, stopMs: r.stopMs === undefined ? undefined : Math.round(r.stopMs), rssAfterMiB: after === null ? null : Math.round(after.rssMiB) };
    log(`  connection accepted after ${metrics.restartAcceptMs} ms, ${r.reported} messages reported after ${metrics.restartReadyMs} ms`);
  } else {
    metrics.restartAcceptMs = null;
    metrics.restartReadyMs = null;
    phases.restart = { skipped: o.restart ? broker.restartNote : 'skipped (--no-restart)' };
  }

  // Phase 4: drain with one consumer, manual acks batched with multiple=true.
  log(`draining with one consumer, prefetch ${o.prefetch}, ack every ${o.ackEvery} (multiple=true)…`);
  const consumer = new Consumer({ url: o.url, queue, noAck: false, prefetch: o.prefetch, ackEvery: o.ackEvery, verifier });
  await consumer.open();
  sampler = new ProcSampler(broker.pid).start();
  const drainStart = performance.now();
  await consumer.start(N, o.slices);
  await consumer.done(deadline);
  const drainStats = sampler.stop();
  consumer.ackPending();
  const drainMs = consumer.lastAt - drainStart;
  metrics.drainRate = rate(consumer.received, drainMs);
  const slices = sliceRates(drainStart, consumer.checkpoints, consumer.checkpointEvery);
  metrics.drainSteadiness = slices.length > 0 ? Math.round((Math.min(...slices) / Math.max(...slices)) * 100) / 100 : null;
  const consumeError = consumer.error;
  await consumer.close();
  await sleep(o.settle * 1000);
  const afterDrain = readProc(broker.pid);
  metrics.rssAfterDrainMiB = afterDrain === null ? null : Math.round(afterDrain.rssMiB);
  const afterDrainSplit = afterDrain === null ? null : { anonMiB: Math.round(afterDrain.rssAnonMiB), fileMiB: Math.round(afterDrain.rssFileMiB) };
  const drainSampler = sampler;
  const sliceRss = (consumer.checkpoints ?? []).map((t) => drainSampler.rssAt(t));
  phases.drain = { received: consumer.received, seconds: drainMs / 1000, rate: metrics.drainRate, sliceRates: slices, sliceRssMiB: sliceRss, steadiness: metrics.drainSteadiness, firstDeliveryMs: Math.round(consumer.firstAt - drainStart), broker: drainStats, rssAfterMiB: metrics.rssAfterDrainMiB, rssAfterSplit: afterDrainSplit, error: consumeError?.message ?? null };
  log(`  ${consumer.received} received in ${(drainMs / 1000).toFixed(1)} s: ${metrics.drainRate} msg/s; per 10 %: ${slices.join(' ')}`);
  log(`  broker RSS (MiB) per 10 % of the drain: ${sliceRss.join(' ')}`);
  log(`  broker RSS after the drain: ${metrics.rssAfterDrainMiB ?? 'n/a'} MiB (anon ${afterDrainSplit?.anonMiB ?? 'n/a'}, file-backed ${afterDrainSplit?.fileMiB ?? 'n/a'})`);

  const leftover = await deleteQueue(o.url, queue);
  const verification = verifier.result(published);
  verification.queueLeftAtDelete = leftover;
  return { metrics, phases, latency: consumer.latency.summary(), verification };
}

/** Messages per second in each slice between consecutive checkpoints. */
function sliceRates(start, checkpoints, every) {
  const rates = [];
  let prev = start;
  for (const t of checkpoints ?? []) {
    rates.push(rate(every, t - prev));
    prev = t;
  }
  return rates;
}
