#!/usr/bin/env node
// The store alone (no AMQP): what a big queue's background deletion allocates on the main
// thread, by allocating function. Run against dist/ (npm run build):
//   node --single-threaded-gc bench/micro/store-delete-alloc.mjs [--count 300000] [--top 15]
// Fills a durable queue with N persistent 16 B messages, deletes it, and samples every
// allocation during the deletion with the inspector's heap profiler (objects the collector
// has freed included: the deletion's cost to other queues is its garbage). "(V8 API)" is
// what native code made, mostly the Buffers LevelDB hands back.
import { mkdtemp, rm } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';

const dist = new URL('../../dist/', import.meta.url);
const { LevelStore } = await import(new URL('store/level-store.js', dist).href);
const { values } = parseArgs({ options: { count: { type: 'string', default: '300000' }, top: { type: 'string', default: '15' } } });
const N = Number(values.count);

const dir = await mkdtemp(join(tmpdir(), 'warren-delete-alloc-'));
const store = new LevelStore(dir, pino({ level: 'warn' }));
await store.open();
store.putQueue({ vhost: '/', name: 'big', id: 1, autoDelete: false, arguments: new Map() });
const body = Buffer.alloc(16, 1);
for (let i = 1; i <= N; i++) {
  const messageId = store.putMessage({ exchange: '', routingKey: 'big', rawProperties: Buffer.alloc(0), body });
  store.putEntry({ queueId: 1, priority: 0, seq: i, messageId, refs: 1, redelivered: false, transient: false, expiresAt: 0 });
  if (i % 10_000 === 0) await store.flush();
}
await store.flush();

// the deletion's pauses are unref'd timers: keep the process alive until it is done
const keepAlive = setInterval(() => {}, 1000);
const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
const t0 = performance.now();
store.deleteQueue('/', 'big', 1);
await store.deletionsDone();
const ms = performance.now() - t0;
const { profile } = await session.post('HeapProfiler.stopSampling');
clearInterval(keepAlive);

const bySite = new Map();
let total = 0;
const frameName = (f) => `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
const walk = (node, stack) => {
  const here = [...stack, frameName(node.callFrame)];
  if (node.selfSize > 0) {
    const site = here.slice(-3).reverse().join(' < ');
    bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    total += node.selfSize;
  }
  for (const child of node.children) walk(child, here);
};
walk(profile.head, []);
console.log(`deleted ${N.toLocaleString('en-US')} entries in ${Math.round(ms)} ms; allocated ${(total / 1e6).toFixed(1)} MB (${Math.round(total / N)} B per entry), by site:`);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`${(bytes / 1e6).toFixed(1).padStart(7)} MB  ${site}`);
await store.close();
await rm(dir, { recursive: true, force: true });
