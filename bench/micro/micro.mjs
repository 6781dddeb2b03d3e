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
const { deliverySize, ShortstrBytes, writeDelivery } = await load('protocol/frame-writer.js');
const { decodeHotMethod, HotMethods } = await load('protocol/hot-methods.js');
const { RouteSet } = await load('routing/route-set.js');
const { Outbound } = await load('transport/outbound.js');
const { decodeMethod, encodeMethodFrame } = await load('protocol/generated/methods.js');
const { MethodId } = await load('protocol/generated/constants.js');
const { checkBasicProperties, encodeBasicProperties } = await load('protocol/generated/properties.js');
const { createRoutingTable } = await load('routing/routing-table.js');
const { Message } = await load('message/message.js');
const { Queue } = await load('queue/queue.js');
const { Consumer } = await load('queue/consumer.js');

/** A socket stand-in that accepts every write and keeps nothing. */
function nullSocket() {
  return { destroyed: false, cork() {}, uncork() {}, write: () => true };
}

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
        while (reader.nextFrame()) left--;
      }
    }) ;
  },
  'decodeMethod (basic.publish, generic decoder)': () => {
    const payload = publishFrame.subarray(7, publishFrame.length - 1);
    return measure((n) => {
      for (let i = 0; i < n; i++) decodeMethod(payload);
    });
  },
  'decodeHotMethod (basic.publish, the broker\'s path)': () => {
    const h = new HotMethods();
    return measure((n) => {
      for (let i = 0; i < n; i++) decodeHotMethod(h, publishFrame, 7, publishFrame.length - 1);
    });
  },
  'decodeHotMethod (basic.publish, a different routing key each time)': () => {
    const h = new HotMethods();
    const frames = ['order.created.eu', 'order.created.us', 'заказ.создан.eu'].map((routingKey) =>
      encodeMethodFrame(1, { id: MethodId.BasicPublish, args: { exchange: 'amq.topic', routingKey, mandatory: false, immediate: false } }),
    );
    return measure((n) => {
      for (let i = 0; i < n; i++) {
        const f = frames[i % 3];
        decodeHotMethod(h, f, 7, f.length - 1);
      }
    });
  },
  'checkBasicProperties (content-type, delivery-mode, a 3-entry headers table)': () => {
    const raw = encodeBasicProperties({
      contentType: 'application/json',
      deliveryMode: 2,
      messageId: 'm-0001',
      headers: new Map([
        ['tenant', { type: 'S', value: Buffer.from('acme') }],
        ['attempt', { type: 'I', value: 1 }],
        ['trace', { type: 'F', value: new Map([['id', { type: 'x', value: Buffer.alloc(16) }]]) }],
      ]),
    });
    return measure((n) => {
      for (let i = 0; i < n; i++) checkBasicProperties(raw, 0, raw.length);
    });
  },
  'writeDelivery into the outbound slab (16 B body inline)': () => {
    const body = Buffer.alloc(16, 1);
    const out = new Outbound(nullSocket());
    const tags = new ShortstrBytes('tag');
    const exs = new ShortstrBytes('exchange');
    const rks = new ShortstrBytes('routing key');
    return measure((n) => {
      for (let i = 0; i < n; i++) {
        const tag = tags.of('amq.ctag-abcdefghijklmnopqrstuv');
        const ex = exs.of('amq.topic');
        const rk = rks.of('a.b.c');
        const buf = out.reserve(deliverySize(tag, ex, rk, props, 16));
        out.commit(writeDelivery(buf, out.offset, 1, tag, i + 1, false, ex, rk, props, 16, body));
      }
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
    const out = new RouteSet();
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
    const out = new Outbound(nullSocket());
    const tags = new ShortstrBytes('tag');
    const exs = new ShortstrBytes('exchange');
    const rks = new ShortstrBytes('routing key');
    const owner = {
      canDeliver: () => true,
      deliver(consumer, queue, entry) {
        const m = entry.message;
        const t = tags.of(consumer.tag);
        const ex = exs.of(m.exchange);
        const rk = rks.of(m.routingKey);
        const buf = out.reserve(deliverySize(t, ex, rk, m.rawProperties, m.bodySize));
        out.commit(writeDelivery(buf, out.offset, 1, t, ++tag, false, ex, rk, m.rawProperties, m.bodySize, m.body));
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
