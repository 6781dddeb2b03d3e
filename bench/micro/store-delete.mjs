#!/usr/bin/env node
// The store alone (no AMQP): how long a big queue's background deletion holds up another
// queue's commits, and how long it blocks the event loop. Run against dist/ (npm run build):
//   node bench/micro/store-delete.mjs [--count 300000] [--purge] [--baseline-ms 2000]
// Fills a durable queue with N persistent 16 B messages, then a bystander puts one message
// and entry into another queue every 5 ms and waits for its commit (as a confirm would);
// after the baseline the big queue is deleted (or purged) and the bystander goes on until
// 1 s after the deletion is done. Prints the bystander's longest commit wait before and
// during, the event loop's longest stall (a 1 ms timer's lateness) in each, and how long
// the deletion took. Use it with `node --cpu-prof` to see where the deletion's time goes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import pino from 'pino';

const dist = new URL('../../dist/', import.meta.url);
const { LevelStore } = await import(new URL('store/level-store.js', dist).href);

const { values: opts } = parseArgs({
  options: {
    count: { type: 'string', default: '300000' },
    purge: { type: 'boolean', default: false },
    'baseline-ms': { type: 'string', default: '2000' },
    interval: { type: 'string', default: '5' },
  },
});
const N = Number(opts.count);
const BASELINE_MS = Number(opts['baseline-ms']);
const INTERVAL = Number(opts.interval);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = await mkdtemp(join(tmpdir(), 'warren-store-delete-'));
const logger = pino({ level: 'silent' });
const store = new LevelStore(dir, logger);
await store.open();
await store.recover();

const props = Buffer.alloc(0);
const message = (i) => ({ exchange: '', routingKey: 'big', rawProperties: props, body: Buffer.alloc(16, i & 255) });
const entry = (queueId, seq, messageId) => ({ queueId, priority: 0, seq, messageId, refs: 1, redelivered: false, transient: false, expiresAt: 0 });

const bigId = store.allocateQueueId();
const big = { vhost: '/', name: 'big', id: bigId, autoDelete: false, arguments: new Map() };
store.putQueue(big);
const byId = store.allocateQueueId();
store.putQueue({ vhost: '/', name: 'bystander', id: byId, autoDelete: false, arguments: new Map() });

const t0 = performance.now();
for (let i = 1; i <= N; i++) {
  store.putEntry(entry(bigId, i, store.putMessage(message(i))));
  if (i % 2000 === 0) await store.flush();
}
await store.flush();
process.stderr.write(`filled ${N} in ${Math.round(performance.now() - t0)} ms\n`);

// event-loop lateness: a 1 ms timer, its longest lateness per phase
let lastTick = performance.now();
let loopMax = 0;
const ticker = setInterval(() => {
  const now = performance.now();
  const late = now - lastTick - 1;
  if (late > loopMax) loopMax = late;
  lastTick = now;
}, 1);

const waits = [];
let stop = false;
let seq = 0;
const bystander = (async () => {
  while (!stop) {
    const s = performance.now();
    store.putEntry(entry(byId, ++seq, store.putMessage(message(seq))));
    await new Promise((resolve) => store.afterCommit({ batchCommitted: () => resolve() }));
    const ms = performance.now() - s;
    waits.push([s, ms]);
    if (ms < INTERVAL) await sleep(INTERVAL - ms);
  }
})();

await sleep(BASELINE_MS);
const loopBefore = loopMax;
loopMax = 0;
const d0 = performance.now();
if (opts.purge) store.purgeQueue({ ...big, id: store.allocateQueueId() }, bigId);
else store.deleteQueue('/', 'big', bigId);
await store.deletionsDone();
const d1 = performance.now();
await sleep(1000);
stop = true;
await bystander;
clearInterval(ticker);
const loopDuring = loopMax;

const max = (rows) => rows.reduce((m, [, ms]) => Math.max(m, ms), 0);
const before = waits.filter(([s, ms]) => s + ms < d0);
const during = waits.filter(([s, ms]) => s + ms >= d0 && s < d1);
const p = (rows, q) => {
  const v = rows.map(([, ms]) => ms).sort((a, b) => a - b);
  return v.length === 0 ? 0 : v[Math.min(v.length - 1, Math.floor(q * v.length))];
};
const f = (x) => x.toFixed(1);
console.log(
  JSON.stringify({
    count: N,
    op: opts.purge ? 'purge' : 'delete',
    deletionMs: Math.round(d1 - d0),
    before: { n: before.length, p50: f(p(before, 0.5)), p99: f(p(before, 0.99)), max: f(max(before)), loopMax: f(loopBefore) },
    during: { n: during.length, p50: f(p(during, 0.5)), p99: f(p(during, 0.99)), max: f(max(during)), loopMax: f(loopDuring) },
    excessMs: f(max(during) - max(before)),
  }),
);
await store.close();
await rm(dir, { recursive: true, force: true });
