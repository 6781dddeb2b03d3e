#!/usr/bin/env node
// Micro-benchmarks of Warren's hot pieces, run against dist/ (npm run build first):
//   node bench/micro/micro.mjs [name…]
// Each case runs for ~1 s after a warm-up and prints operations per second, so a
// regression in review shows up as a drop here. Absolute figures drift between machines;
// compare runs on the same machine.
import { performance } from 'node:perf_hooks';

const dist = new URL('../../dist/', import.meta.url);
const load = (p) => import(new URL(p, dist).href);

const { FrameReader } = await load('protocol/frame-reader.js');
const { encodeDeliveryHead } = await load('protocol/frame-writer.js');
const { decodeMethod, encodeMethodFrame } = await load('protocol/generated/methods.js');
const { MethodId } = await load('protocol/generated/constants.js');
const { encodeBasicProperties } = await load('protocol/generated/properties.js');
const { createRoutingTable } = await load('routing/routing-table.js');
const { Message } = await load('message/message.js');
const { Queue } = await load('queue/queue.js');
const { Consumer } = await load('queue/consumer.js');

/** Runs fn(n) in growing batches for ~durationMs; returns ops/s. */
function measure(fn, durationMs = 1000) {
  fn(1000); // warm-up
  let ops = 0;
  let batch = 1000;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < durationMs) {
    fn(batch);
    ops += batch;
    elapsed = performance.now() - start;
    if (elapsed < durationMs / 10) batch *= 2;
  }
  return (ops / elapsed) * 1000;
}

const props = encodeBasicProperties({ contentType: 'application/json', deliveryMode: 2, headers: new Map([['k', { type: 'S', value: Buffer.from('v') }]]) });
const publishFrame = encodeMethodFrame(1, { id: MethodId.BasicPublish, args: { exchange: 'amq.topic', routingKey: 'a.b.c', mandatory: false, immediate: false } });

const cases = {
  'frame-reader (publish method frames, 64 KiB chunks)': () => {
    const perChunk = Math.floor(65536 / publishFrame.length);
    const chunk = Buffer.concat(Array.from({ length: perChunk }, () => publishFrame));
    return measure((n) => {
      const reader = new FrameReader(131072);
      let left = n;
      while (left > 0) {
        reader.push(chunk);
        while (reader.next() !== null) left--;
      }
    }) ;
  },
  'decodeMethod (basic.publish)': () => {
    const payload = publishFrame.subarray(7, publishFrame.length - 1);
    return measure((n) => {
      for (let i = 0; i < n; i++) decodeMethod(payload);
    });
  },
  'encodeDeliveryHead (16 B body inline)': () => {
    const body = Buffer.alloc(16, 1);
    return measure((n) => {
      for (let i = 0; i < n; i++) encodeDeliveryHead(1, 'amq.ctag-abcdefghijklmnopqrstuv', i + 1, false, 'amq.topic', 'a.b.c', props, 16, body);
    });
  },
  'topic route (1,000 bindings)': () => {
    const table = createRoutingTable('topic');
    const dests = [];
    for (let i = 0; i < 1000; i++) {
      const d = { name: `q${i}` };
      dests.push(d);
      table.bind(d, i % 10 === 0 ? `a.*.${i}` : i % 10 === 1 ? `#.x${i}` : `s${i % 50}.k${i}.#`, new Map());
    }
    const keys = Array.from({ length: 256 }, (_, i) => `s${i % 50}.k${i * 3}.z`);
    const out = new Set();
    return measure((n) => {
      for (let i = 0; i < n; i++) {
        out.clear();
        table.route(keys[i & 255], undefined, out);
      }
    });
  },
  'publish → deliver loop (in-memory queue, one consumer, no socket)': () => {
    const host = { queueUnused() {}, queueStoreError() {}, deadLetter() {} };
    const q = new Queue('bench', { durable: false, autoDelete: false, exclusiveOwner: null, arguments: new Map() }, host);
    let delivered = 0;
    let tag = 0;
    const owner = {
      canDeliver: () => true,
      deliver(consumer, queue, entry) {
        const m = entry.message;
        encodeDeliveryHead(1, consumer.tag, ++tag, false, m.exchange, m.routingKey, m.rawProperties, m.bodySize, m.body);
        delivered++;
      },
      consumerCancelled() {},
    };
    q.addConsumer(new Consumer('ctag', q, owner, true, false, 0, new Map()));
    const body = Buffer.alloc(16, 2);
    return measure((n) => {
      for (let i = 0; i < n; i++) q.enqueue(new Message('', 'bench', props, body));
      // drain synchronously the way the scheduled passes would
      while (q.ready.length !== 0) q['deliveryPass']();
    });
  },
};

const wanted = process.argv.slice(2);
for (const [name, run] of Object.entries(cases)) {
  if (wanted.length > 0 && !wanted.some((w) => name.includes(w))) continue;
  const opsPerSec = run();
  console.log(`${name.padEnd(70)} ${Math.round(opsPerSec).toLocaleString('en-US').padStart(14)} ops/s`);
}
