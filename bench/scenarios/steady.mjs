// Steady-state scenarios: producers and consumers run at the same time for --duration
// seconds (or until --count messages are published); reports publish and consume rates
// and end-to-end latency. throughput / ack / confirm differ only in their defaults.
import { Histogram } from '../lib/histogram.mjs';
import { ProcSampler } from '../lib/proc-stats.mjs';
import { closeAll, deleteQueue, firstError, freshQueue, openConsumers, openProducers, queueName, rate, share } from './common.mjs';

const STEADY_METRICS = [
  { key: 'publishRate', label: 'publish rate (msg/s)', better: 'higher' },
  { key: 'consumeRate', label: 'consume rate (msg/s)', better: 'higher' },
  { key: 'latencyP50Ms', label: 'latency p50 (ms)', better: 'lower' },
  { key: 'latencyP99Ms', label: 'latency p99 (ms)', better: 'lower' },
  { key: 'latencyP999Ms', label: 'latency p99.9 (ms)', better: 'lower' },
  { key: 'brokerRssMaxMiB', label: 'broker RSS max (MiB)', better: 'lower' },
  { key: 'brokerCpuPercent', label: 'broker CPU (%)', better: 'lower' },
];

function steady(name, description, defaults) {
  return { name, description, defaults, metrics: STEADY_METRICS, run: (o, broker, log) => runSteady(name, o, broker, log) };
}

export const throughput = steady('throughput', 'transient messages, producer → no-ack consumer', { persistent: false, confirm: 0, noAck: true });
export const ack = steady('ack', 'transient messages, consumer with manual acks and prefetch 100', { persistent: false, confirm: 0, noAck: false, prefetch: 100, ackEvery: 1 });
export const confirm = steady('confirm', 'persistent messages to a durable queue with a confirm window of 256, no-ack consumer', { persistent: true, confirm: 256, noAck: true });

/** How long consumers may take to catch up once producers stop; and the no-progress cut-off. */
const CATCH_UP_MS = 120_000;
const NO_PROGRESS_MS = 5_000;

async function runSteady(name, o, broker, log) {
  const queue = queueName(name);
  await freshQueue(o.url, queue, o.persistent);
  const { producers, verifier } = await openProducers(o, queue);
  const consumers = await openConsumers(o, queue, verifier);
  for (const c of consumers) await c.start();

  const count = o.count ?? Infinity;
  const hardDeadline = performance.now() + o.timeout * 1000;
  const deadline = o.count === null ? performance.now() + o.duration * 1000 : hardDeadline;
  log(`${name}: ${o.producers} producer(s), ${o.consumers} consumer(s), ${o.size} B, ${o.count ?? `${o.duration} s`}…`);
  const sampler = new ProcSampler(broker.pid).start();
  const runs = await Promise.all(producers.map((p, i) => p.run(Number.isFinite(count) ? share(count, producers.length, i) : Infinity, deadline)));
  const published = producers.map((p) => (p.confirm > 0 ? p.confirmed : p.published));
  const expected = published.reduce((a, b) => a + b, 0);

  // Let consumers catch up with everything published, bounded; stop early when nothing moves.
  const catchUpDeadline = Math.min(hardDeadline, performance.now() + CATCH_UP_MS);
  let lastProgress = performance.now();
  let lastReceived = verifier.received;
  while (consumers.length > 0 && verifier.received < expected && performance.now() < catchUpDeadline && firstError(consumers) === null) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (verifier.received !== lastReceived) {
      lastReceived = verifier.received;
      lastProgress = performance.now();
    } else if (performance.now() - lastProgress > NO_PROGRESS_MS) break;
  }
  const brokerStats = sampler.stop();
  const error = firstError(producers) ?? firstError(consumers);
  await closeAll(consumers);
  await closeAll(producers);
  await deleteQueue(o.url, queue);

  const started = Math.min(...runs.map((r) => r.started));
  const publishEnded = Math.max(...runs.map((r) => (o.confirm > 0 ? r.confirmedAt : r.publishEnded)));
  const firstAt = Math.min(...consumers.map((c) => c.firstAt || Infinity));
  const lastAt = Math.max(...consumers.map((c) => c.lastAt));
  const latency = new Histogram();
  for (const c of consumers) latency.merge(c.latency);
  const lat = latency.summary();
  const metrics = {
    publishRate: rate(expected, publishEnded - started),
    consumeRate: consumers.length > 0 ? rate(verifier.received, lastAt - firstAt) : null,
    latencyP50Ms: lat?.p50Ms ?? null,
    latencyP99Ms: lat?.p99Ms ?? null,
    latencyP999Ms: lat?.p999Ms ?? null,
    brokerRssMaxMiB: brokerStats.rssMaxMiB,
    brokerCpuPercent: brokerStats.cpuPercent,
  };
  const verification = consumers.length > 0 ? verifier.result(published) : { ok: true, note: 'no consumers' };
  if (error !== null) {
    verification.ok = false;
    verification.clientError = error.message;
  }
  return { metrics, phases: { run: { published: expected, seconds: (publishEnded - started) / 1000, broker: brokerStats } }, latency: lat, verification };
}
