// Steady-state scenarios: producers and consumers run at the same time for --duration
// seconds (or until --count messages are published), each in its own worker thread (see
// lib/client-thread.mjs), and the scenario reports publish and delivery rates and
// end-to-end latency. The scenarios differ in their defaults and in the topology: the
// default exchange to one queue, a fanout exchange to 4 queues, or a topic exchange with
// 1,000 bindings of which exactly one matches.
import { connect } from 'amqplib';
import { ClientGroup } from '../lib/client-thread.mjs';
import { Histogram } from '../lib/histogram.mjs';
import { makePattern } from '../lib/payload.mjs';
import { ProcSampler } from '../lib/proc-stats.mjs';
import { Verifier } from '../lib/verifier.mjs';
import { queueName, rate, share } from './common.mjs';

const STEADY_METRICS = [
  { key: 'publishRate', label: 'publish rate (msg/s)', better: 'higher' },
  { key: 'consumeRate', label: 'delivery rate, all queues (msg/s)', better: 'higher' },
  { key: 'consumeMBps', label: 'delivered body MB/s (10^6 B)', better: 'higher' },
  { key: 'latencyP50Ms', label: 'latency p50 (ms)', better: 'lower' },
  { key: 'latencyP99Ms', label: 'latency p99 (ms)', better: 'lower' },
  { key: 'latencyP999Ms', label: 'latency p99.9 (ms)', better: 'lower' },
  { key: 'brokerRssMaxMiB', label: 'broker RSS max (MiB)', better: 'lower' },
  { key: 'brokerCpuPercent', label: 'broker CPU (%)', better: 'lower' },
];

/**
 * Topologies. `queues` are consumed (o.consumers per queue, each queue must receive every
 * message); `idleQueues` are bound but must receive nothing.
 */
const DIRECT = (name) => ({ exchange: null, routingKey: queueName(name), queues: [{ name: queueName(name), bindingKey: null }], idleQueues: [], extraBindings: [] });

function fanoutTopology(name, n = 4) {
  const exchange = { name: `warren-perf-${name}-x`, type: 'fanout' };
  const queues = Array.from({ length: n }, (_, i) => ({ name: `${queueName(name)}-${i}`, bindingKey: '' }));
  return { exchange, routingKey: '', queues, idleQueues: [], extraBindings: [] };
}

/**
 * 1,000 bindings on a topic exchange; the routing key matches exactly one of them
 * (`perf.*.target` → the consumed queue). The other 999 patterns use `*` and `#` in
 * several positions and are spread over 9 idle queues, which must stay empty.
 */
function topicTopology(name, bindings = 1000) {
  const exchange = { name: `warren-perf-${name}-x`, type: 'topic' };
  const idleQueues = Array.from({ length: 9 }, (_, i) => ({ name: `${queueName(name)}-idle-${i}` }));
  const extraBindings = [];
  for (let i = 0; i < bindings - 1; i++) {
    const k = i % 4;
    const pattern = k === 0 ? `perf.k${i}.#` : k === 1 ? `*.x${i}.*` : k === 2 ? `#.y${i}` : `perf.*.t${i}`;
    extraBindings.push([idleQueues[i % idleQueues.length].name, pattern]);
  }
  return { exchange, routingKey: 'perf.key.target', queues: [{ name: queueName(name), bindingKey: 'perf.*.target' }], idleQueues, extraBindings };
}

/**
 * Producers pause while consumers are more than this many messages (per queue) behind, so
 * the rates are sustained ones with a bounded queue, not the rate at which a backlog grows
 * (--max-lag 0: unbounded, like PerfTest). 64 KiB bodies get a smaller bound (64 MiB).
 */
const MAX_LAG = 10_000;

function steady(name, description, defaults, topology = DIRECT) {
  defaults = { maxLag: defaults.size >= 65536 ? 1000 : MAX_LAG, ...defaults };
  return { name, description, defaults, metrics: STEADY_METRICS, run: (o, broker, log) => runSteady(name, o, broker, log, topology(name)) };
}

export const throughput = steady('throughput', 'transient 16 B messages, producer → no-ack consumer', { persistent: false, confirm: 0, noAck: true });
// latency: the first 2 s are a warm-up (JIT tiers, socket buffers): Warren is started fresh
// for every run while the RabbitMQ it is compared with has been running all along.
export const latency = steady('latency', 'transient messages at a fixed --rate (default 10,000 msg/s), no-ack consumer: p50/p99/p99.9', { persistent: false, confirm: 0, noAck: true, rate: 10_000, warmup: 2 });
export const ack = steady('ack', 'transient messages, consumer with manual acks and prefetch 100', { persistent: false, confirm: 0, noAck: false, prefetch: 100, ackEvery: 1 });
export const confirm = steady('confirm', 'persistent messages to a durable queue with a confirm window of 256, no-ack consumer', { persistent: true, confirm: 256, noAck: true });
export const fanout = steady('fanout', 'fanout exchange to 4 queues, one no-ack consumer each: publishes/s and deliveries/s', { persistent: false, confirm: 0, noAck: true }, fanoutTopology);
export const topic = steady('topic', 'topic exchange with 1,000 bindings, the key matches 1 (to one queue), no-ack consumer', { persistent: false, confirm: 0, noAck: true }, topicTopology);
export const body1k = steady('body1k', 'transient 1 KiB messages, producer → no-ack consumer', { persistent: false, confirm: 0, noAck: true, size: 1024 });
export const body64k = steady('body64k', 'transient 64 KiB messages, producer → no-ack consumer (MB/s)', { persistent: false, confirm: 0, noAck: true, size: 65536 });

/** How long consumers may take to catch up once producers stop; and the no-progress cut-off. */
const CATCH_UP_MS = 120_000;
const NO_PROGRESS_MS = 5_000;

async function adminChannel(url) {
  const connection = await connect(url, { noDelay: true });
  connection.on('error', () => {});
  const ch = await connection.createChannel();
  ch.on('error', () => {});
  return { connection, ch };
}

async function setupTopology(url, t, durable) {
  const { connection, ch } = await adminChannel(url);
  try {
    await teardownWith(ch, t);
    if (t.exchange !== null) await ch.assertExchange(t.exchange.name, t.exchange.type, { durable: false, autoDelete: false });
    for (const q of [...t.queues, ...t.idleQueues]) await ch.assertQueue(q.name, { durable, autoDelete: false, exclusive: false });
    if (t.exchange !== null) {
      for (const q of t.queues) await ch.bindQueue(q.name, t.exchange.name, q.bindingKey);
      for (const [queue, key] of t.extraBindings) await ch.bindQueue(queue, t.exchange.name, key);
    }
  } finally {
    await connection.close().catch(() => {});
  }
}

async function teardownWith(ch, t) {
  const left = {};
  for (const q of [...t.queues, ...t.idleQueues]) left[q.name] = (await ch.deleteQueue(q.name)).messageCount;
  if (t.exchange !== null) await ch.deleteExchange(t.exchange.name);
  return left;
}

/** Deletes the topology; returns { queue: messages left } or null on failure. */
async function teardown(url, t) {
  try {
    const { connection, ch } = await adminChannel(url);
    try {
      return await teardownWith(ch, t);
    } finally {
      await connection.close().catch(() => {});
    }
  } catch {
    return null;
  }
}

export async function runSteady(name, o, broker, log, t) {
  await setupTopology(o.url, t, o.persistent);
  const producers = new ClientGroup(o.producers);
  const consumers = new ClientGroup(o.consumers * t.queues.length);
  /** consumer thread → index of its queue */
  const queueOf = [];
  try {
    const perProducerRate = o.rate > 0 && o.producers > 0 ? o.rate / o.producers : 0;
    const common = { url: o.url, size: o.size, client: o.client };
    // --max-lag: producers pause while consumers are that many messages (per queue) behind.
    const lagWatch = o.maxLag > 0 && o.consumers > 0 ? { producers: producers.progress, producerCount: o.producers, consumers: consumers.progress, consumerCount: o.consumers * t.queues.length, queues: t.queues.length, maxLag: o.maxLag } : null;
    for (let id = 0; id < o.producers; id++) {
      await producers.add('producer', { ...common, id, exchange: t.exchange?.name ?? '', routingKey: t.routingKey, persistent: o.persistent, confirm: o.confirm, rate: perProducerRate, lagWatch });
    }
    for (let qi = 0; qi < t.queues.length; qi++) {
      for (let i = 0; i < o.consumers; i++) {
        await consumers.add('consumer', { ...common, queue: t.queues[qi].name, noAck: o.noAck, prefetch: o.prefetch, ackEvery: o.ackEvery });
        queueOf.push(qi);
      }
    }
    // --warmup: the run is that much longer, and latency counts only messages sent after it
    const latencyFromEpoch = performance.timeOrigin + performance.now() + o.warmup * 1000;
    await Promise.all(consumers.threads.map((c) => c.send({ type: 'start', latencyFromEpoch }, 'started')));

    const count = o.count ?? Infinity;
    const hardDeadline = performance.now() + o.timeout * 1000;
    const runMs = o.count === null ? (o.warmup + o.duration) * 1000 : o.timeout * 1000;
    log(`${name}: ${o.producers} producer(s), ${o.consumers} consumer(s) × ${t.queues.length} queue(s), ${o.size} B, ${o.count ?? `${o.duration} s`}${o.warmup > 0 ? ` after a ${o.warmup} s warm-up` : ''}${o.rate > 0 ? ` at ${o.rate} msg/s` : ''}${lagWatch !== null ? `, max lag ${o.maxLag}` : ''}, ${o.client} client in threads…`);
    const sampler = new ProcSampler(broker.pid).start();
    const deadlineEpoch = performance.timeOrigin + performance.now() + runMs;
    const runs = await Promise.all(
      producers.threads.map((p, i) => p.send({ type: 'run', count: Number.isFinite(count) ? share(count, o.producers, i) : Infinity, deadlineEpoch }, 'ran', runMs + 90_000)),
    );
    const publishedBy = runs.map((r) => (o.confirm > 0 ? r.confirmed : r.published));
    const published = publishedBy.reduce((a, b) => a + b, 0);
    const expected = published * t.queues.length;

    // Let consumers catch up with everything published, bounded; stop early when nothing moves.
    const catchUpDeadline = Math.min(hardDeadline, performance.now() + CATCH_UP_MS);
    let lastProgress = performance.now();
    let lastReceived = consumers.total();
    while (consumers.threads.length > 0 && consumers.total() < expected && performance.now() < catchUpDeadline && consumers.threads.every((c) => c.exitError === null)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const now = consumers.total();
      if (now !== lastReceived) {
        lastReceived = now;
        lastProgress = performance.now();
      } else if (performance.now() - lastProgress > NO_PROGRESS_MS) break;
    }
    const brokerStats = sampler.stop();
    const consumerResults = await consumers.stopAll();
    const producerResults = await producers.stopAll();
    const left = await teardown(o.url, t);

    // Merge: one verifier per queue (each queue must get every message once, in order per consumer).
    const pattern = makePattern(o.size);
    const verifiers = t.queues.map(() => new Verifier(o.size, pattern));
    const lat = new Histogram();
    let received = 0;
    let firstAt = Infinity;
    let lastAt = 0;
    consumerResults.forEach((r, i) => {
      if (r.verifier !== undefined) verifiers[queueOf[i]].absorb(r.verifier);
      if (r.latency !== undefined) lat.merge(r.latency);
      received += r.received ?? 0;
      if (r.firstAt > 0) firstAt = Math.min(firstAt, r.firstAt);
      if (r.lastAt > lastAt) lastAt = r.lastAt;
    });
    const perQueue = verifiers.map((v) => v.result(publishedBy));
    const verification = mergeVerdicts(perQueue);
    const errors = [...runs, ...producerResults, ...consumerResults].map((r) => r.error).filter((e) => e !== null && e !== undefined);
    const idleLeft = left === null ? null : t.idleQueues.reduce((n, q) => n + (left[q.name] ?? 0), 0);
    if (idleLeft !== null && idleLeft > 0) {
      verification.ok = false;
      verification.firstError ??= `${idleLeft} message(s) routed to queues whose bindings do not match`;
    }
    verification.misrouted = idleLeft;
    if (errors.length > 0) {
      verification.ok = false;
      verification.clientError = errors[0];
    }

    const started = Math.min(...runs.map((r) => r.started));
    const publishEnded = Math.max(...runs.map((r) => (o.confirm > 0 ? r.confirmedAt : r.publishEnded)));
    const summary = lat.summary();
    const consumeRate = received > 0 ? rate(received, lastAt - firstAt) : null;
    const metrics = {
      publishRate: rate(published, publishEnded - started),
      consumeRate,
      consumeMBps: consumeRate === null ? null : Math.round((consumeRate * o.size) / 1e4) / 100,
      latencyP50Ms: summary?.p50Ms ?? null,
      latencyP99Ms: summary?.p99Ms ?? null,
      latencyP999Ms: summary?.p999Ms ?? null,
      brokerRssMaxMiB: brokerStats.rssMaxMiB,
      brokerCpuPercent: brokerStats.cpuPercent,
    };
    return {
      metrics,
      phases: { run: { published, delivered: received, queues: t.queues.length, bindings: t.queues.length + t.extraBindings.length, seconds: (publishEnded - started) / 1000, broker: brokerStats, perQueue: perQueue.length > 1 ? perQueue : undefined } },
      latency: summary,
      verification,
    };
  } catch (err) {
    await Promise.all([consumers.stopAll(), producers.stopAll()]);
    await teardown(o.url, t);
    throw err;
  }
}

/** One verdict over several queues' verdicts (sums; the first error found). */
function mergeVerdicts(list) {
  const out = { ok: true, expected: 0, received: 0, missing: 0, duplicates: 0, redelivered: 0, outOfOrder: 0, corrupt: 0, firstError: null };
  for (const v of list) {
    out.ok &&= v.ok;
    for (const k of ['expected', 'received', 'missing', 'duplicates', 'redelivered', 'outOfOrder', 'corrupt']) out[k] += v[k];
    out.firstError ??= v.firstError;
  }
  return out;
}
