// Idle connections: the broker's resident memory per open connection. Reads the broker's
// RSS once it is stable, opens --connections (default 1,000) AMQP connections each with one channel (amqplib,
// opened in batches of 50), waits until the RSS is stable, reads it again:
//   RSS per connection = (RSS after − RSS before) / connections opened.
// Then checks each connection still works (its channel answers a passive queue.declare
// of the scenario's queue) and closes them all.
// A broker that stops accepting connections (RabbitMQ refuses beyond its file-descriptor
// limit) fails verification; the figure is then over the connections it did accept.
import { connect } from 'amqplib';
import { settledProc } from '../lib/proc-stats.mjs';
import { queueName } from './common.mjs';

const BATCH = 50;
const CONNECT_TIMEOUT_MS = 10_000;

export const idle = {
  name: 'idle',
  description: 'broker RSS per idle connection (each with one channel), --connections 1000',
  defaults: {},
  metrics: [
    { key: 'rssPerConnectionKiB', label: 'broker RSS per idle connection (KiB)', better: 'lower' },
    { key: 'rssBeforeMiB', label: 'broker RSS before (MiB)', better: 'lower' },
    { key: 'rssAfterMiB', label: 'broker RSS with the connections open (MiB)', better: 'lower' },
    { key: 'connectionsOpened', label: 'connections opened', better: 'higher' },
  ],
  run: runIdle,
};

function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

async function openOne(url) {
  const connection = await connect(url, { noDelay: true });
  connection.on('error', () => {});
  const ch = await connection.createChannel();
  ch.on('error', () => {});
  return { connection, ch };
}

async function runIdle(o, broker, log) {
  const queue = queueName('idle');
  const n = o.connections;
  if (broker.pid == null) log('idle: no broker pid (use --manage or --broker-pid): RSS cannot be read');
  const admin = await openOne(o.url);
  await admin.ch.assertQueue(queue, { durable: false, autoDelete: false });
  // Both readings wait for the RSS to stop moving (at least --settle s, at most 15 s).
  const settle = { minMs: o.settle * 1000 };
  const before = await settledProc(broker.pid, settle);
  log(`idle: broker RSS ${before === null ? 'n/a' : before.rssMiB.toFixed(1)} MiB; opening ${n} connections with one channel each…`);
  const open = [];
  /** connects abandoned after a timeout, closed when (if) they complete */
  const late = [];
  let error = null;
  const t0 = performance.now();
  for (let i = 0; i < n && error === null; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + BATCH); j++) batch.push(openOne(o.url));
    const settled = await Promise.allSettled(batch.map((p) => withTimeout(p, CONNECT_TIMEOUT_MS, 'connect')));
    settled.forEach((s, k) => {
      if (s.status === 'fulfilled') open.push(s.value);
      else {
        error ??= `connection ${i + k + 1}: ${s.reason?.message ?? s.reason}`;
        late.push(batch[k]);
      }
    });
  }
  const openMs = performance.now() - t0;
  const after = await settledProc(broker.pid, settle);
  log(`idle: ${open.length} open in ${(openMs / 1000).toFixed(1)} s; broker RSS ${after === null ? 'n/a' : after.rssMiB.toFixed(1)} MiB${error ? `; ${error}` : ''}`);

  // Every connection is still usable: its channel answers a passive declare.
  let answered = 0;
  for (let i = 0; i < open.length; i += BATCH) {
    const r = await Promise.allSettled(open.slice(i, i + BATCH).map((c) => withTimeout(c.ch.checkQueue(queue), CONNECT_TIMEOUT_MS, 'queue.declare passive')));
    answered += r.filter((s) => s.status === 'fulfilled').length;
  }
  for (let i = 0; i < open.length; i += BATCH) await Promise.allSettled(open.slice(i, i + BATCH).map((c) => c.connection.close()));
  for (const p of late) p.then((c) => c.connection.close().catch(() => {}), () => {});
  await admin.ch.deleteQueue(queue).catch(() => {});
  await admin.connection.close().catch(() => {});

  const perConnKiB = before !== null && after !== null && open.length > 0 ? Math.round(((after.rssMiB - before.rssMiB) * 1024) / open.length) : null;
  const ok = open.length === n && answered === open.length;
  return {
    metrics: {
      rssPerConnectionKiB: perConnKiB,
      rssBeforeMiB: before === null ? null : Math.round(before.rssMiB),
      rssAfterMiB: after === null ? null : Math.round(after.rssMiB),
      connectionsOpened: open.length,
    },
    phases: { open: { requested: n, opened: open.length, answered, seconds: openMs / 1000, rssAnonBeforeMiB: before?.rssAnonMiB, rssAnonAfterMiB: after?.rssAnonMiB } },
    latency: null,
    verification: {
      ok,
      expected: n,
      received: answered,
      missing: n - answered,
      duplicates: 0,
      outOfOrder: 0,
      corrupt: 0,
      firstError: ok ? null : (error ?? `${open.length - answered} connection(s) did not answer`),
    },
  };
}
