// The transient backlog: how much memory the broker needs to hold --count (default
// 1,000,000) queued 16-byte transient messages in a non-durable queue. One producer
// thread publishes them with no consumer attached (no confirms: the count is checked with
// queue.declare passive until the queue reports all of them), the broker's RSS is read
// after --settle seconds of idle, then one no-ack consumer thread drains the queue and
// every message is verified (count, order, body).
import { connect } from 'amqplib';
import { ClientGroup } from '../lib/client-thread.mjs';
import { makePattern } from '../lib/payload.mjs';
import { ProcSampler, settledProc } from '../lib/proc-stats.mjs';
import { Verifier } from '../lib/verifier.mjs';
import { deleteQueue, freshQueue, queueName, rate, sleep } from './common.mjs';

const NO_PROGRESS_MS = 10_000;

export const backlogTransient = {
  name: 'backlog-transient',
  description: 'RSS holding N (default 1M) queued 16 B transient messages in a non-durable queue; then drain',
  defaults: { count: 1_000_000, persistent: false, confirm: 0, noAck: true },
  metrics: [
    { key: 'rssFullBacklogMiB', label: 'broker RSS holding the backlog (MiB)', better: 'lower' },
    { key: 'rssGrowthMiB', label: 'broker RSS growth for the backlog (MiB)', better: 'lower' },
    { key: 'publishRate', label: 'publish rate until queued (msg/s)', better: 'higher' },
    { key: 'drainRate', label: 'drain rate, 1 no-ack consumer (msg/s)', better: 'higher' },
  ],
  run: runBacklogTransient,
};

/** Polls queue.declare passive until `count` messages are reported or nothing moves for a while. */
async function waitForDepth(url, queue, count, deadline) {
  const connection = await connect(url, { noDelay: true });
  connection.on('error', () => {});
  try {
    const ch = await connection.createChannel();
    let last = -1;
    let lastChange = performance.now();
    while (performance.now() < deadline) {
      const { messageCount } = await ch.checkQueue(queue);
      if (messageCount >= count) return messageCount;
      if (messageCount !== last) {
        last = messageCount;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > NO_PROGRESS_MS) return messageCount;
      await sleep(50);
    }
    return last;
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
  try {
    // Readings wait for the RSS to stop moving (at least --settle s, at most 15 s).
    const settle = { minMs: o.settle * 1000 };
    const before = await settledProc(broker.pid, settle);
    const common = { url: o.url, size: o.size, client: o.client };
    const producer = await producers.add('producer', { ...common, id: 0, exchange: '', routingKey: queue, persistent: false, confirm: o.confirm, rate: 0 });
    log(`backlog-transient: publishing ${N} transient ${o.size} B messages to a non-durable queue…`);
    let sampler = new ProcSampler(broker.pid).start();
    const runMs = Math.max(1000, deadline - performance.now());
    const ran = await producer.send({ type: 'run', count: N, deadlineEpoch: performance.timeOrigin + performance.now() + runMs }, 'ran', runMs + 60_000);
    const depth = await waitForDepth(o.url, queue, N, deadline);
    const queuedAt = performance.timeOrigin + performance.now();
    const pubStats = sampler.stop();
    const published = o.confirm > 0 ? ran.confirmed : ran.published;
    const publishRate = rate(depth, queuedAt - ran.started);
    log(`  ${depth} queued (${published} published) at ${publishRate} msg/s`);
    await producers.stopAll();

    const full = await settledProc(broker.pid, settle);
    log(`  broker RSS ${before === null ? 'n/a' : before.rssMiB.toFixed(0)} MiB before, ${full === null ? 'n/a' : full.rssMiB.toFixed(0)} MiB holding the backlog`);

    const consumer = await consumers.add('consumer', { ...common, queue, noAck: true, prefetch: o.prefetch, ackEvery: 1 });
    sampler = new ProcSampler(broker.pid).start();
    await consumer.send({ type: 'start', target: N, slices: 10 }, 'started');
    let last = 0;
    let lastChange = performance.now();
    while (consumers.total() < depth && performance.now() < deadline && consumer.exitError === null) {
      await sleep(20);
      const now = consumers.total();
      if (now !== last) {
        last = now;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > NO_PROGRESS_MS) break;
    }
    const drainStats = sampler.stop();
    const [result] = await consumers.stopAll();
    const leftover = await deleteQueue(o.url, queue);

    const verifier = new Verifier(o.size, makePattern(o.size));
    if (result.verifier !== undefined) verifier.absorb(result.verifier);
    const verification = verifier.result([published]);
    verification.queuedReported = depth;
    verification.queueLeftAtDelete = leftover;
    const error = ran.error ?? result.error ?? null;
    if (error !== null) {
      verification.ok = false;
      verification.clientError = error;
    }
    return {
      metrics: {
        rssFullBacklogMiB: full === null ? null : Math.round(full.rssMiB),
        rssGrowthMiB: full === null || before === null ? null : Math.round(full.rssMiB - before.rssMiB),
        publishRate,
        drainRate: result.received > 0 ? rate(result.received, result.lastAt - result.firstAt) : null,
      },
      phases: {
        publish: { published, queued: depth, broker: pubStats, rssBeforeMiB: before === null ? null : Math.round(before.rssMiB) },
        fullBacklog: full === null ? { rssMiB: null } : { rssMiB: Math.round(full.rssMiB), rssAnonMiB: Math.round(full.rssAnonMiB), rssFileMiB: Math.round(full.rssFileMiB), peakRssMiB: Math.round(full.hwmMiB) },
        drain: { received: result.received ?? 0, broker: drainStats },
      },
      latency: null,
      verification,
    };
  } catch (err) {
    await Promise.all([producers.stopAll(), consumers.stopAll()]);
    await deleteQueue(o.url, queue);
    throw err;
  }
}
