// Entry point of a client thread (worker_threads): hosts one Producer or Consumer
// (amqplib or raw) so producers and consumers each get their own event loop and core,
// and the generator process is not the bottleneck. Driven by client-thread.mjs:
//   → { type: 'run', count, deadlineEpoch }      producer: publish, reply 'ran'
//   → { type: 'start', target, slices, latencyFromEpoch }
//                                                 consumer: basic.consume, reply 'started';
//                                                 latency only for messages sent from then on
//   → { type: 'halt' }                            producer: end the current run early
//   → { type: 'cancel' }                          consumer: basic.cancel, ack all; reply 'cancelled'
//   → { type: 'depth' }                           consumer: queue.declare passive on its channel;
//                                                 reply 'depth' { messageCount }
//   → { type: 'stop' }                            close; reply 'result' with counters,
//                                                 latency histogram and verifier state
// Progress is published in a shared Int32Array (received so far: with every delivery;
// published so far: every 10 ms and at each --max-lag check), so the coordinator and
// the producers can watch without a message per delivery.
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Consumer } from './consumer.mjs';
import { makePattern } from './payload.mjs';
import { Producer } from './producer.mjs';
import { RawConsumer, RawProducer } from './raw-clients.mjs';
import { Verifier } from './verifier.mjs';

const { role, options, progress, slot } = workerData;
const counters = new Int32Array(progress);
/** Epoch ms ↔ this thread's performance.now(): each thread has its own time origin. */
const toEpoch = (t) => (t > 0 ? performance.timeOrigin + t : 0);
const fromEpoch = (e) => e - performance.timeOrigin;

/**
 * CPU seconds this thread has used (utime + stime of /proc/thread-self/stat), so a run can
 * show whether a client thread, rather than the broker, was the limit. null off Linux.
 */
function threadCpuSeconds() {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}
let cpuFrom = null;
let cpuFromAt = 0;
function markCpu() {
  cpuFrom = threadCpuSeconds();
  cpuFromAt = performance.now();
}
/** This thread's CPU use (%) since markCpu(). */
function cpuPercent() {
  const now = threadCpuSeconds();
  const wall = (performance.now() - cpuFromAt) / 1000;
  return cpuFrom === null || now === null || wall <= 0 ? null : Math.round(((now - cpuFrom) / wall) * 1000) / 10;
}

const pattern = makePattern(options.size);
let client;
let verifier = null;
/** producers: () => deliveries counted by every consumer so far (null without a watch) */
let consumedSoFar = () => null;
if (role === 'producer') {
  const Impl = options.client === 'raw' ? RawProducer : Producer;
  client = new Impl({ ...options, pattern });
  const w = options.lagWatch;
  if (w !== undefined && w !== null) {
    const consumed = new Int32Array(w.consumers);
    consumedSoFar = () => {
      let c = 0;
      for (let i = 0; i < w.consumerCount; i++) c += Atomics.load(consumed, i);
      return c;
    };
  }
  if (w !== undefined && w !== null && w.maxLag > 0) {
    // Consumers store their count with every delivery (see Consumer.progress).
    const produced = new Int32Array(w.producers);
    const consumed = new Int32Array(w.consumers);
    client.lagging = () => {
      // This producer's own count is live; the other producers' come from their threads.
      Atomics.store(produced, slot, client.published);
      let p = 0;
      for (let i = 0; i < w.producerCount; i++) p += i === slot ? client.published : Atomics.load(produced, i);
      let c = 0;
      for (let i = 0; i < w.consumerCount; i++) c += Atomics.load(consumed, i);
      return p * w.queues - c > w.maxLag * w.queues;
    };
  }
} else {
  verifier = new Verifier(options.size, pattern);
  const Impl = options.client === 'raw' ? RawConsumer : Consumer;
  client = new Impl({ ...options, verifier });
  client.progress = counters;
  client.progressSlot = slot;
}

const ticker = setInterval(() => {
  Atomics.store(counters, slot, role === 'producer' ? client.published : client.received);
}, 10);

function errorText(err) {
  return err === null || err === undefined ? null : err instanceof Error ? err.message : String(err);
}

parentPort.on('message', async (msg) => {
  try {
    if (msg.type === 'run') {
      markCpu();
      const r = await client.run(msg.count, fromEpoch(msg.deadlineEpoch));
      // What the consumers had received when this producer stopped publishing: with an
      // unbounded producer, how far behind they were at the end of the window.
      const consumedAtEnd = consumedSoFar();
      Atomics.store(counters, slot, client.published);
      parentPort.postMessage({
        type: 'ran',
        started: toEpoch(r.started),
        publishEnded: toEpoch(r.publishEnded),
        confirmedAt: toEpoch(r.confirmedAt),
        published: client.published,
        consumedAtEnd,
        confirmed: client.confirmed,
        nacked: client.nacked,
        cpuPercent: cpuPercent(),
        error: errorText(client.error),
      });
    } else if (msg.type === 'start') {
      markCpu();
      client.latencyFrom = msg.latencyFromEpoch ?? 0;
      await client.start(msg.target ?? Infinity, msg.slices ?? 10);
      parentPort.postMessage({ type: 'started' });
    } else if (msg.type === 'halt') {
      // producer: end the run now (its 'ran' reply follows); no reply of its own
      client.halt();
    } else if (msg.type === 'cancel') {
      // basic.cancel, wait for cancel-ok, ack everything received: what is left in the
      // queue is then exactly what was never delivered.
      const cpu = cpuPercent();
      await client.finish();
      Atomics.store(counters, slot, client.received);
      parentPort.postMessage({ type: 'cancelled', received: client.received, cpuPercent: cpu });
    } else if (msg.type === 'depth') {
      parentPort.postMessage({ type: 'depth', messageCount: await client.depth() });
    } else if (msg.type === 'stop') {
      clearInterval(ticker);
      // The error is read before closing: amqplib reports our own close as 'channel closed'.
      const error = errorText(client.error);
      await client.close();
      const result = { type: 'result', error, cpuPercent: cpuPercent() };
      if (role === 'producer') {
        Object.assign(result, { published: client.published, confirmed: client.confirmed, nacked: client.nacked, close: client.closeResult ?? null });
      } else {
        Atomics.store(counters, slot, client.received);
        const h = client.latency;
        Object.assign(result, {
          received: client.received,
          firstAt: toEpoch(client.firstAt),
          lastAt: toEpoch(client.lastAt),
          checkpoints: (client.checkpoints ?? []).map(toEpoch),
          latency: { counts: h.counts, total: h.total, sum: h.sum, max: h.max },
          verifier: verifier.exportState(),
        });
      }
      parentPort.postMessage(result);
      parentPort.close();
    }
  } catch (err) {
    parentPort.postMessage({ type: 'failed', error: errorText(err) });
  }
});

try {
  await client.open();
  parentPort.postMessage({ type: 'opened' });
} catch (err) {
  clearInterval(ticker);
  parentPort.postMessage({ type: 'failed', error: errorText(err) });
  parentPort.close();
}
