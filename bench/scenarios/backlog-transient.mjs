// The transient backlog, filled then drained: one producer thread publishes --count
// (default 1,000,000) 16-byte transient messages to a non-durable queue with no consumer
// (no confirms, no lag limit: the count is checked with queue.declare passive until the
// queue reports all of them), the broker's RSS is read once it is stable, then one no-ack
// consumer thread drains the queue and every message is verified (count, order, body).
// Reports the fill rate, the drain rate, the RSS holding the backlog and the peak RSS
// sampled over the whole run (fill, hold and drain).
// A broker that stops taking messages (a memory alarm that does not clear) ends the fill
// after --stall s without progress; the run then fails verification with what was queued.
import { connect } from 'amqplib';
import { ClientGroup } from '../lib/client-thread.mjs';
import { makePattern } from '../lib/payload.mjs';
import { ProcSampler, settledProc } from '../lib/proc-stats.mjs';
import { Verifier } from '../lib/verifier.mjs';
import { deleteQueue, freshQueue, queueName, rate, sleep } from './common.mjs';

export const backlogTransient = {
  name: 'backlog-transient',
  description: 'N (default 1M) queued 16 B transient messages, no consumer: fill rate, RSS holding them, peak RSS; then drain',
  defaults: { count: 1_000_000, persistent: false, confirm: 0, noAck: true, stall: 30 },
  metrics: [
    { key: 'fillRate', label: 'fill rate, until the queue reports N (msg/s)', better: 'higher' },
    { key: 'drainRate', label: 'drain rate, 1 no-ack consumer (msg/s)', better: 'higher' },
    { key: 'rssFullBacklogMiB', label: 'broker RSS holding the backlog (MiB)', better: 'lower' },
    { key: 'rssGrowthMiB', label: 'broker RSS growth for the backlog (MiB)', better: 'lower' },
    { key: 'rssPeakMiB', label: 'broker peak RSS, fill to drained (MiB)', better: 'lower' },
    { key: 'queued', label: 'messages queued', better: 'higher' },
  ],
  run: runBacklogTransient,
};

/**
 * Polls queue.declare passive until `count` messages are reported, the producer stopped
 * and nothing moved for `stallMs`, or the deadline. `onStall` is called (once) when neither
 * the producer's count nor the depth moved for `stallMs`.
 */
async function waitForDepth(url, queue, count, deadline, { stallMs, progress, onStall }) {
  const connection = await connect(url, { noDelay: true });
  connection.on('error', () => {});
  try {
    const ch = await connection.createChannel();
    let last = -1;
    let lastPublished = -1;
    let lastChange = performance.now();
    let stalled = false;
    while (performance.now() < deadline) {
      const { messageCount } = await ch.checkQueue(queue);
      if (messageCount >= count) return { depth: messageCount, stalled };
      const published = progress();
      if (messageCount !== last || published !== lastPublished) {
        last = messageCount;
        lastPublished = published;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > stallMs) {
        if (!stalled) {
          stalled = true;
          onStall();
          lastChange = performance.now(); // what the broker still holds may yet arrive
        } else return { depth: messageCount, stalled };
      }
      await sleep(100);
    }
    return { depth: last, stalled };
  } finally {
    await connection.close().catch(() => {});
  }
}

async function runBacklogTransient(o, broker, log) {
  const queue = queueName('backlog-transient');
  const N = o.count;
  const deadline = performance.now() + o.timeout * 1000;
  await freshQueue(o.url, queue, false);
  const producers = new ClientGroup(1);
  const consumers = new ClientGroup(1);
  /** what was measured so far, kept in the record if a later phase fails */
  const partial = { metrics: {}, phases: {} };
  try {
    // Readings wait for the RSS to stop moving (at least --settle s, at most 15 s).
    const settle = { minMs: o.settle * 1000 };
    const before = await settledProc(broker.pid, settle);
    const common = { url: o.url, size: o.size, client: o.client };
    const producer = await producers.add('producer', { ...common, id: 0, exchange: '', routingKey: queue, persistent: false, confirm: o.confirm, rate: 0 });
    log(`backlog-transient: publishing ${N.toLocaleString('en-US')} transient ${o.size} B messages to a non-durable queue, no consumer…`);
    const whole = new ProcSampler(broker.pid, 500).start();
    let sampler = new ProcSampler(broker.pid).start();
    const runMs = Math.max(1000, deadline - performance.now());
    const t0 = performance.timeOrigin + performance.now();
    const ranP = producer.send({ type: 'run', count: N, deadlineEpoch: t0 + runMs }, 'ran', runMs + 60_000);
    ranP.catch(() => {});
    const { depth, stalled } = await waitForDepth(o.url, queue, N, deadline, {
      stallMs: o.stall * 1000,
      progress: () => producers.total(),
      onStall: () => {
        log(`  no progress for ${o.stall} s at ${producers.total()} published: stopping the producer`);
        producer.post({ type: 'halt' });
      },
    });
    const queuedAt = performance.timeOrigin + performance.now();
    if (stalled) producer.post({ type: 'halt' });
    const ran = await ranP;
    const pubStats = sampler.stop();
    const published = o.confirm > 0 ? ran.confirmed : ran.published;
    const fillRate = rate(depth, queuedAt - ran.started);
    log(`  ${depth.toLocaleString('en-US')} queued (${published.toLocaleString('en-US')} published) at ${fillRate} msg/s${stalled ? ' (the broker stopped taking messages)' : ''}`);
    const [producerResult] = await producers.stopAll(90_000);

    const full = await settledProc(broker.pid, settle);
    log(`  broker RSS ${before === null ? 'n/a' : before.rssMiB.toFixed(0)} MiB before, ${full === null ? 'n/a' : full.rssMiB.toFixed(0)} MiB holding the backlog`);
    Object.assign(partial.metrics, { fillRate, queued: depth, rssFullBacklogMiB: full === null ? null : Math.round(full.rssMiB), rssPeakMiB: Math.round(whole.rssMaxMiB) });
    partial.phases.fill = { published, queued: depth, stalled, seconds: (queuedAt - ran.started) / 1000, broker: pubStats };

    const consumer = await consumers.add('consumer', { ...common, queue, noAck: true, prefetch: o.prefetch, ackEvery: 1 });
    sampler = new ProcSampler(broker.pid).start();
    // A broker busy paging may take a while to answer basic.consume.
    await consumer.send({ type: 'start', target: N, slices: 10 }, 'started', 120_000);
    let last = 0;
    let lastChange = performance.now();
    const goal = Math.max(depth, published);
    while (consumers.total() < goal && performance.now() < deadline && consumer.exitError === null) {
      await sleep(20);
      const now = consumers.total();
      if (now !== last) {
        last = now;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > o.stall * 1000) break;
    }
    const drainStats = sampler.stop();
    const [result] = await consumers.stopAll();
    const wholeStats = whole.stop();
    const leftover = await deleteQueue(o.url, queue);

    const verifier = new Verifier(o.size, makePattern(o.size));
    if (result.verifier !== undefined) verifier.absorb(result.verifier);
    const verification = verifier.result([published]);
    verification.queuedReported = depth;
    verification.queueLeftAtDelete = leftover;
    const error = ran.error ?? result.error ?? (producerResult.close?.closeOk === false ? 'the producer connection got no close-ok' : null);
    if (error !== null) {
      verification.ok = false;
      verification.clientError = error;
    }
    if (depth < N) {
      verification.ok = false;
      verification.firstError ??= `the queue reported ${depth} of ${N} messages${stalled ? `: the broker took nothing for ${o.stall} s` : ''}`;
    }
    const rssByTenth = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((k) => whole.rssAt(ran.started - performance.timeOrigin + ((queuedAt - ran.started) * k) / 10));
    return {
      metrics: {
        fillRate,
        drainRate: result.received > 0 ? rate(result.received, result.lastAt - result.firstAt) : null,
        rssFullBacklogMiB: full === null ? null : Math.round(full.rssMiB),
        rssGrowthMiB: full === null || before === null ? null : Math.round(full.rssMiB - before.rssMiB),
        rssPeakMiB: wholeStats.rssMaxMiB === null ? null : Math.round(wholeStats.rssMaxMiB),
        queued: depth,
      },
      phases: {
        fill: { published, queued: depth, stalled, seconds: (queuedAt - ran.started) / 1000, broker: pubStats, rssBeforeMiB: before === null ? null : Math.round(before.rssMiB), rssMiBByTenth: rssByTenth },
        fullBacklog: full === null ? { rssMiB: null } : { rssMiB: Math.round(full.rssMiB), rssAnonMiB: Math.round(full.rssAnonMiB), rssFileMiB: Math.round(full.rssFileMiB) },
        drain: { received: result.received ?? 0, broker: drainStats },
        whole: wholeStats,
      },
      latency: null,
      verification,
    };
  } catch (err) {
    await Promise.all([producers.stopAll(), consumers.stopAll()]);
    await deleteQueue(o.url, queue);
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { partial });
  }
}
