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
  { key: 'publishMBps', label: 'published body MB/s (10^6 B)', better: 'higher' },
  { key: 'windowConsumeRate', label: 'delivered while publishing, all queues (msg/s)', better: 'higher' },
  { key: 'windowConsumeMBps', label: 'delivered body MB/s while publishing (10^6 B)', better: 'higher' },
  { key: 'lagEnd', label: 'consumer behind at the end, per queue (msg)', better: 'lower' },
  { key: 'lagEndMB', label: 'consumer behind at the end, per queue (MB)', better: 'lower' },
  { key: 'lagMax', label: 'most the consumer was behind, per queue (msg)', better: 'lower' },
  { key: 'consumeRate', label: 'delivery rate, first to last delivery, all queues (msg/s)', better: 'higher' },
  { key: 'consumeMBps', label: 'delivered body MB/s, first to last (10^6 B)', better: 'higher' },
  { key: 'drainRate', label: 'drain rate after publishing (msg/s)', better: 'higher' },
  { key: 'latencyP50Ms', label: 'latency p50 (ms)', better: 'lower' },
  { key: 'latencyP99Ms', label: 'latency p99 (ms)', better: 'lower' },
  { key: 'latencyP999Ms', label: 'latency p99.9 (ms)', better: 'lower' },
  { key: 'brokerRssMaxMiB', label: 'broker RSS max (MiB)', better: 'lower' },
  { key: 'brokerCpuPercent', label: 'broker CPU (%)', better: 'lower' },
  { key: 'generatorRssMaxMiB', label: 'load generator RSS max (MiB)', better: 'lower' },
  { key: 'producerCpuPercent', label: 'busiest producer thread CPU (%)', better: 'lower' },
  { key: 'consumerCpuPercent', label: 'busiest consumer thread CPU (%)', better: 'lower' },
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
// No consumer while publishing: the queue only grows, so every confirm waits for the
// message to be written durably (nothing is consumed before its batch is on disk). The
// queue is drained and verified afterwards.
export const publishConfirm = steady('publish-confirm', 'persistent messages to a durable queue with a confirm window of 256 and no consumer (drained and verified after)', { persistent: true, confirm: 256, noAck: true, drainAfter: true, maxLag: 0 });

/** The no-progress cut-off while consumers catch up (the bound itself is --catch-up). */
const NO_PROGRESS_MS = 5_000;
/** How often the coordinator samples the lag (published − consumed per queue). */
const LAG_SAMPLE_MS = 20;

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

/**
 * One steady-state run:
 *  1. consumers start (unless --drain-after: publish-only, consumers start in step 3);
 *  2. producers publish for --duration s (or --count), paused by --max-lag if set; the
 *     lag (published − consumed, per queue) is sampled throughout, and each producer notes
 *     how much the consumers had received when it stopped (the end of the window);
 *  3. consumers get up to --catch-up s to receive the rest (stopping early after 5 s
 *     without progress);
 *  4. producers close (connection.close-ok: the broker has taken every publish), each
 *     consumer cancels (basic.cancel-ok: every delivery sent has arrived) and acks what it
 *     received, then asks its queue's depth on its own channel: what is left was never
 *     delivered, and must be exactly each producer's newest messages.
 */
export async function runSteady(name, o, broker, log, t) {
  await setupTopology(o.url, t, o.persistent);
  const producers = new ClientGroup(o.producers);
  const consumers = new ClientGroup(o.consumers * t.queues.length);
  /** consumer thread → index of its queue */
  const queueOf = [];
  const drainAfter = o.drainAfter === true;
  let lagTimer = null;
  try {
    const perProducerRate = o.rate > 0 && o.producers > 0 ? o.rate / o.producers : 0;
    const common = { url: o.url, size: o.size, client: o.client };
    // Producers see the consumers' counts: to pause at --max-lag, and to note the lag at the end.
    const lagWatch = o.consumers > 0 && !drainAfter ? { producers: producers.progress, producerCount: o.producers, consumers: consumers.progress, consumerCount: o.consumers * t.queues.length, queues: t.queues.length, maxLag: o.maxLag } : null;
    for (let id = 0; id < o.producers; id++) {
      await producers.add('producer', { ...common, id, exchange: t.exchange?.name ?? '', routingKey: t.routingKey, persistent: o.persistent, confirm: o.confirm, rate: perProducerRate, lagWatch });
    }
    const addConsumers = async () => {
      for (let qi = 0; qi < t.queues.length; qi++) {
        for (let i = 0; i < o.consumers; i++) {
          await consumers.add('consumer', { ...common, queue: t.queues[qi].name, noAck: o.noAck, prefetch: o.prefetch, ackEvery: o.ackEvery, ackRate: o.ackRate });
          queueOf.push(qi);
        }
      }
    };
    // --warmup: the run is that much longer, and latency counts only messages sent after it
    const latencyFromEpoch = performance.timeOrigin + performance.now() + o.warmup * 1000;
    const startConsumers = () => Promise.all(consumers.threads.map((c) => c.send({ type: 'start', latencyFromEpoch }, 'started')));
    if (!drainAfter) {
      await addConsumers();
      await startConsumers();
    }

    const count = o.count ?? Infinity;
    const hardDeadline = performance.now() + o.timeout * 1000;
    const runMs = o.count === null ? (o.warmup + o.duration) * 1000 : o.timeout * 1000;
    const lagText = drainAfter ? ', no consumer while publishing (drained afterwards)' : o.maxLag > 0 ? `, max lag ${o.maxLag}` : ', producers never wait (no lag limit)';
    log(`${name}: ${o.producers} producer(s), ${o.consumers} consumer(s) × ${t.queues.length} queue(s), ${o.size} B, ${o.count ?? `${o.duration} s`}${o.warmup > 0 ? ` after a ${o.warmup} s warm-up` : ''}${o.rate > 0 ? ` at ${o.rate} msg/s` : ''}${lagText}, ${o.client} client in threads…`);
    const sampler = new ProcSampler(broker.pid).start();
    // The generator's own process (all its threads): an unbounded producer must not make it the bottleneck.
    const genSampler = new ProcSampler(process.pid).start();
    let lagMax = 0;
    if (!drainAfter && t.queues.length > 0) {
      lagTimer = setInterval(() => {
        const lag = (producers.total() * t.queues.length - consumers.total()) / t.queues.length;
        if (lag > lagMax) lagMax = lag;
      }, LAG_SAMPLE_MS);
    }
    const deadlineEpoch = performance.timeOrigin + performance.now() + runMs;
    const runs = await Promise.all(
      producers.threads.map((p, i) => p.send({ type: 'run', count: Number.isFinite(count) ? share(count, o.producers, i) : Infinity, deadlineEpoch }, 'ran', runMs + 90_000)),
    );
    if (lagTimer !== null) clearInterval(lagTimer);
    lagTimer = null;
    const publishedBy = runs.map((r) => (o.confirm > 0 ? r.confirmed : r.published));
    const published = publishedBy.reduce((a, b) => a + b, 0);
    const expected = published * t.queues.length;
    const started = Math.min(...runs.map((r) => r.started));
    const lastRun = runs.reduce((a, b) => (b.publishEnded > a.publishEnded ? b : a));
    const publishEnded = lastRun.publishEnded;
    // The end of the window: what the consumers had received when the last producer stopped.
    const consumedAtEnd = drainAfter ? 0 : (lastRun.consumedAtEnd ?? consumers.total());
    const lagEnd = t.queues.length > 0 ? Math.max(0, (runs.reduce((n, r) => n + r.published, 0) * t.queues.length - consumedAtEnd) / t.queues.length) : null;

    let drainStarted = null;
    if (drainAfter) {
      await addConsumers();
      drainStarted = performance.timeOrigin + performance.now();
      await startConsumers();
    }
    // Let consumers catch up (at most --catch-up s); stop early when nothing moves.
    const catchUpDeadline = Math.min(hardDeadline, performance.now() + o.catchUp * 1000);
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
    const caughtUp = consumers.total() >= expected;
    const brokerStats = sampler.stop();
    // A throttled publisher's socket may still hold publishes: close-ok says the broker took them all.
    const producerResults = await producers.stopAll(90_000);
    const unclosed = producerResults.filter((r) => r.close !== undefined && r.close !== null && !r.close.closeOk).length;
    // Exact accounting of what was never delivered: cancel, ack all, then each queue's depth.
    const cancelled = await Promise.all(consumers.threads.map((c) => c.send({ type: 'cancel' }, 'cancelled').catch((err) => ({ error: err.message }))));
    const leftByQueue = [];
    for (let qi = 0; qi < t.queues.length; qi++) {
      const c = consumers.threads[queueOf.indexOf(qi)];
      let left = null;
      if (c !== undefined) {
        try {
          left = (await c.send({ type: 'depth' }, 'depth')).messageCount;
        } catch {
          left = null;
        }
      }
      leftByQueue.push(left);
    }
    const consumerResults = await consumers.stopAll();
    const genStats = genSampler.stop();
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
    const perQueue = verifiers.map((v, qi) => v.result(publishedBy, leftByQueue[qi] ?? 0));
    const verification = mergeVerdicts(perQueue);
    const errors = [...runs, ...producerResults, ...cancelled, ...consumerResults].map((r) => r.error).filter((e) => e !== null && e !== undefined);
    const idleLeft = left === null ? null : t.idleQueues.reduce((n, q) => n + (left[q.name] ?? 0), 0);
    if (idleLeft !== null && idleLeft > 0) {
      verification.ok = false;
      verification.firstError ??= `${idleLeft} message(s) routed to queues whose bindings do not match`;
    }
    verification.misrouted = idleLeft;
    if (leftByQueue.some((n) => n === null) && !caughtUp) {
      verification.ok = false;
      verification.firstError ??= 'the consumers did not catch up and a queue\'s depth could not be read';
    }
    if (unclosed > 0) {
      verification.ok = false;
      verification.firstError ??= `${unclosed} producer connection(s) got no close-ok: what they published cannot be accounted for`;
    }
    if (errors.length > 0) {
      verification.ok = false;
      verification.clientError = errors[0];
    }

    const summary = lat.summary();
    const consumeRate = received > 0 ? rate(received, lastAt - firstAt) : null;
    const windowMs = publishEnded - started;
    const windowConsumeRate = drainAfter ? null : rate(consumedAtEnd, windowMs);
    const mbps = (r) => (r === null ? null : Math.round((r * o.size) / 1e4) / 100);
    const maxCpu = (list) => {
      const v = list.map((r) => r.cpuPercent).filter((x) => typeof x === 'number');
      return v.length === 0 ? null : Math.max(...v);
    };
    const metrics = {
      publishRate: rate(published, (o.confirm > 0 ? Math.max(...runs.map((r) => r.confirmedAt)) : publishEnded) - started),
      consumeRate,
      consumeMBps: mbps(consumeRate),
      publishMBps: null,
      windowConsumeRate,
      windowConsumeMBps: mbps(windowConsumeRate),
      lagEnd: lagEnd === null ? null : Math.round(lagEnd),
      lagEndMB: lagEnd === null ? null : Math.round((lagEnd * o.size) / 1e6),
      lagMax: drainAfter ? null : Math.round(lagMax),
      drainRate: drainAfter && received > 0 ? rate(received, lastAt - drainStarted) : null,
      latencyP50Ms: summary?.p50Ms ?? null,
      latencyP99Ms: summary?.p99Ms ?? null,
      latencyP999Ms: summary?.p999Ms ?? null,
      brokerRssMaxMiB: brokerStats.rssMaxMiB,
      brokerCpuPercent: brokerStats.cpuPercent,
      generatorRssMaxMiB: genStats.rssMaxMiB,
      producerCpuPercent: maxCpu(runs),
      consumerCpuPercent: maxCpu(cancelled),
    };
    metrics.publishMBps = mbps(metrics.publishRate);
    return {
      metrics,
      phases: {
        run: {
          published,
          delivered: received,
          consumedAtWindowEnd: drainAfter ? null : consumedAtEnd,
          leftInQueues: leftByQueue,
          caughtUp,
          producerCloseMs: producerResults.map((r) => r.close?.ms ?? null),
          queues: t.queues.length,
          bindings: t.queues.length + t.extraBindings.length,
          seconds: windowMs / 1000,
          broker: brokerStats,
          generator: genStats,
          perQueue: perQueue.length > 1 ? perQueue : undefined,
        },
      },
      latency: summary,
      verification,
    };
  } catch (err) {
    if (lagTimer !== null) clearInterval(lagTimer);
    await Promise.all([consumers.stopAll(), producers.stopAll()]);
    await teardown(o.url, t);
    throw err;
  }
}

/** One verdict over several queues' verdicts (sums; the first error found). */
function mergeVerdicts(list) {
  const out = { ok: true, expected: 0, received: 0, undelivered: 0, missing: 0, duplicates: 0, redelivered: 0, outOfOrder: 0, corrupt: 0, firstError: null };
  for (const v of list) {
    out.ok &&= v.ok;
    for (const k of ['expected', 'received', 'undelivered', 'missing', 'duplicates', 'redelivered', 'outOfOrder', 'corrupt']) out[k] += v[k];
    out.firstError ??= v.firstError;
  }
  return out;
}
