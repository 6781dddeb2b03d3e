// The persistent flood: one producer publishes persistent 1 KiB messages into a durable
// queue as fast as the broker lets it, without confirms and without any lag limit, for
// --duration s (default 60), while one slow consumer (manual acks, prefetch 100, acks
// released at --ack-rate, default 1,000 msg/s) reads from it. Beside it, a bystander
// publishes a persistent message with confirms to its own durable queue every 10 ms,
// one at a time.
// What it shows: whether the broker's memory stays bounded when a publisher outruns both
// the consumer and the disk (the broker must slow the publisher, as RabbitMQ's flow
// control does, rather than buffer), and how long an unrelated persistent publisher waits
// for its confirms meanwhile. Reports the broker's peak RSS and its RSS every 10 s, the
// rates, the bystander's confirm waits (p50 / p99 / max) and how long deleting the
// backlog took. Every delivery to the slow consumer is verified; what it did not get
// must be exactly what is left in the queue (see the verifier); the bystander's messages
// are drained and verified too.
import { ClientGroup } from '../lib/client-thread.mjs';
import { ConfirmProbe } from '../lib/confirm-probe.mjs';
import { makePattern } from '../lib/payload.mjs';
import { ProcSampler } from '../lib/proc-stats.mjs';
import { RawConnection } from '../lib/raw-amqp.mjs';
import { Verifier } from '../lib/verifier.mjs';
import { deleteQueue, freshQueue, queueName, rate } from './common.mjs';

/** How long deleting the flooded queue may take before the run gives up on it. */
const DELETE_TIMEOUT_MS = 300_000;

export const flood = {
  name: 'flood',
  description: 'persistent 1 KiB flood without confirms into a durable queue, one slow consumer, 60 s: peak RSS, a bystander\'s confirm waits',
  defaults: { size: 1024, persistent: true, confirm: 0, duration: 60, noAck: false, prefetch: 100, ackRate: 1000, probeInterval: 10 },
  metrics: [
    { key: 'rssPeakMiB', label: 'broker peak RSS during the flood (MiB)', better: 'lower' },
    { key: 'rssEndMiB', label: 'broker RSS at the end of the flood (MiB)', better: 'lower' },
    { key: 'publishRate', label: 'flood publish rate (msg/s)', better: 'higher' },
    { key: 'slowConsumeRate', label: 'slow consumer rate (msg/s)', better: 'higher' },
    { key: 'backlogEnd', label: 'backlog at the end (msg)', better: 'lower' },
    { key: 'probeConfirmP50Ms', label: 'bystander confirm wait p50 (ms)', better: 'lower' },
    { key: 'probeConfirmP99Ms', label: 'bystander confirm wait p99 (ms)', better: 'lower' },
    { key: 'probeConfirmMaxMs', label: 'bystander confirm wait max (ms)', better: 'lower' },
    { key: 'deleteMs', label: 'queue.delete of the backlog (ms)', better: 'lower' },
  ],
  run: runFlood,
};

function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

async function runFlood(o, broker, log) {
  const queue = queueName('flood');
  await freshQueue(o.url, queue, true);
  const producers = new ClientGroup(1);
  const consumers = new ClientGroup(1);
  const probe = new ConfirmProbe({ url: o.url, queue: `${queue}-bystander`, intervalMs: o.probeInterval });
  let probeOpen = false;
  try {
    const common = { url: o.url, size: o.size, client: o.client };
    const producer = await producers.add('producer', { ...common, id: 0, exchange: '', routingKey: queue, persistent: true, confirm: 0, rate: 0, lagWatch: { producers: producers.progress, producerCount: 1, consumers: consumers.progress, consumerCount: 1, queues: 1, maxLag: 0 } });
    const consumer = await consumers.add('consumer', { ...common, queue, noAck: false, prefetch: o.prefetch, ackEvery: 1, ackRate: o.ackRate });
    await probe.open();
    probeOpen = true;
    log(`flood: persistent ${o.size} B into a durable queue for ${o.duration} s, no confirms, no lag limit; one consumer acking ${o.ackRate} msg/s (prefetch ${o.prefetch}); a bystander publishing with confirms every ${o.probeInterval} ms…`);
    await consumer.send({ type: 'start' }, 'started');
    const sampler = new ProcSampler(broker.pid).start();
    const t0 = performance.now();
    probe.start();
    const runMs = o.duration * 1000;
    const ran = await producer.send({ type: 'run', count: Infinity, deadlineEpoch: performance.timeOrigin + performance.now() + runMs }, 'ran', runMs + 90_000);
    const windowEnd = performance.now();
    await probe.stop();
    const probeStats = probe.stats(t0, windowEnd);
    const probeBy10s = probe.maxBySlice(t0, 10_000, Math.ceil(runMs / 10_000));
    const [producerResult] = await producers.stopAll(90_000);
    const brokerStats = sampler.stop();
    const rssBy10s = [];
    for (let s = 10_000; s <= runMs; s += 10_000) rssBy10s.push(sampler.rssAt(t0 + s));
    log(`  published ${ran.published.toLocaleString('en-US')}; broker RSS every 10 s (MiB): ${rssBy10s.join(' ')}; peak ${Math.round(brokerStats.rssMaxMiB ?? 0)}; bystander confirm max per 10 s (ms): ${probeBy10s.map((x) => (x === null ? 'none' : Math.round(x))).join(' ')}`);

    const cancelled = await consumer.send({ type: 'cancel' }, 'cancelled').catch((err) => ({ error: err.message }));
    let left = null;
    try {
      left = (await consumer.send({ type: 'depth' }, 'depth')).messageCount;
    } catch {
      left = null;
    }
    const [result] = await consumers.stopAll();
    const probeVerdict = await probe.verifyAndClose();
    probeOpen = false;

    // Deleting the backlog: timed, bounded.
    let deleteMs = null;
    let deleted = null;
    let deleteError = null;
    const admin = await RawConnection.open(o.url);
    admin.onError = () => {};
    try {
      const d0 = performance.now();
      deleted = (await withTimeout(admin.deleteQueue(queue), DELETE_TIMEOUT_MS, 'queue.delete')).messageCount;
      deleteMs = Math.round(performance.now() - d0);
    } catch (err) {
      deleteError = err.message;
    }
    await admin.close();
    log(`  slow consumer got ${(result.received ?? 0).toLocaleString('en-US')}; ${left ?? 'n/a'} left in the queue; queue.delete took ${deleteMs ?? deleteError} ms`);

    const verifier = new Verifier(o.size, makePattern(o.size));
    if (result.verifier !== undefined) verifier.absorb(result.verifier);
    const verification = verifier.result([ran.published], left ?? 0);
    verification.bystander = probeVerdict;
    const error = ran.error ?? cancelled.error ?? result.error ?? (producerResult.close?.closeOk === false ? 'the producer connection got no close-ok' : null) ?? (left === null ? 'the queue depth could not be read' : null);
    if (error !== null) {
      verification.ok = false;
      verification.clientError = error;
    }
    if (!probeVerdict.ok) {
      verification.ok = false;
      verification.firstError ??= `bystander: ${probeVerdict.firstError ?? probeVerdict.clientError}`;
    }
    const windowS = (ran.publishEnded - ran.started) / 1000;
    return {
      metrics: {
        rssPeakMiB: brokerStats.rssMaxMiB === null ? null : Math.round(brokerStats.rssMaxMiB),
        rssEndMiB: rssBy10s.at(-1) ?? null,
        publishRate: rate(ran.published, ran.publishEnded - ran.started),
        slowConsumeRate: ran.consumedAtEnd === null ? null : Math.round(ran.consumedAtEnd / windowS),
        backlogEnd: left,
        probeConfirmP50Ms: probeStats.p50Ms,
        probeConfirmP99Ms: probeStats.p99Ms,
        probeConfirmMaxMs: probeStats.maxMs,
        deleteMs,
      },
      phases: {
        flood: { published: ran.published, seconds: windowS, consumedAtEnd: ran.consumedAtEnd, broker: brokerStats, rssMiBBy10s: rssBy10s, producerCloseMs: producerResult.close?.ms ?? null },
        bystander: { ...probeStats, sent: probe.sent, confirmed: probe.confirmed, maxMsBy10s: probeBy10s },
        delete: { deleteMs, deleted, error: deleteError },
      },
      latency: null,
      verification,
    };
  } catch (err) {
    await Promise.all([producers.stopAll(), consumers.stopAll()]);
    if (probeOpen) {
      await probe.stop(5000);
      await probe.verifyAndClose(5000).catch(() => {});
    }
    await deleteQueue(o.url, queue);
    throw err;
  }
}
