#!/usr/bin/env node
// Checks the instrument itself (no broker needed): the latency histogram's precision,
// that the verifier catches every kind of bad delivery, and option resolution.
//   node bench/self-check.mjs
import assert from 'node:assert/strict';
import { Histogram } from './lib/histogram.mjs';
import { GLOBAL_DEFAULTS, explicitOptions, resolveOptions } from './lib/options.mjs';
import { HEADER_SIZE, encodeBody, fillIntact, makePattern, writeBodyInto } from './lib/payload.mjs';
import { RawConnection, loadCodec } from './lib/raw-amqp.mjs';
import { Verifier } from './lib/verifier.mjs';
import { SCENARIOS } from './scenarios/index.mjs';

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

check('histogram quantiles are within 1 % over 6 decades', () => {
  const h = new Histogram();
  const values = [];
  for (let i = 0; i < 100_000; i++) values.push(0.001 * 10 ** ((i % 1000) / 166)); // 1 µs … ~1 s
  for (const v of values) h.recordMs(v);
  values.sort((a, b) => a - b);
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    const exact = values[Math.ceil(q * values.length) - 1];
    const got = h.quantileMs(q);
    assert.ok(Math.abs(got - exact) / exact < 0.01 || Math.abs(got - exact) < 0.001, `q${q}: ${got} vs ${exact}`);
  }
  assert.equal(h.summary().samples, 100_000);
});

check('histogram merge adds counts', () => {
  const a = new Histogram();
  const b = new Histogram();
  a.recordMs(1);
  b.recordMs(3);
  a.merge(b);
  assert.equal(a.total, 2);
  assert.equal(a.quantileMs(1), 3);
});

check('a body round-trips and any changed byte is detected', () => {
  for (const size of [16, 17, 1024, 70_000]) {
    const pattern = makePattern(size);
    const body = encodeBody(size, pattern, 3, 12345, 42.5);
    assert.equal(body.length, size);
    assert.equal(body.readUInt32LE(0), 3);
    assert.equal(body.readUInt32LE(4), 12345);
    assert.equal(body.readDoubleLE(8), 42.5);
    assert.ok(fillIntact(body, size, pattern, 12345));
    if (size > HEADER_SIZE) {
      const bad = Buffer.from(body);
      bad[size - 1] ^= 1;
      assert.ok(!fillIntact(bad, size, pattern, 12345));
      // the fill depends on seq, so a body replayed under another seq is caught too
      assert.ok(!fillIntact(body, size, pattern, 12346));
    }
    assert.ok(!fillIntact(body.subarray(0, size - 1), size, pattern, 12345));
  }
});

check('the verifier accepts a clean stream and reports each fault', () => {
  const size = 64;
  const pattern = makePattern(size);
  const body = (p, seq) => encodeBody(size, pattern, p, seq, 0);
  const clean = new Verifier(size, pattern);
  const order = clean.newOrderTracker();
  for (let seq = 0; seq < 100; seq++) {
    clean.check(body(0, seq), false, order);
    clean.check(body(1, seq), false, order);
  }
  assert.deepEqual({ ...clean.result([100, 100]), firstError: null }, { ok: true, expected: 200, received: 200, undelivered: 0, missing: 0, duplicates: 0, redelivered: 0, outOfOrder: 0, corrupt: 0, firstError: null });

  const v = new Verifier(size, pattern);
  const o = v.newOrderTracker();
  v.check(body(0, 0), false, o);
  v.check(body(0, 2), false, o);
  v.check(body(0, 1), false, o); // out of order
  v.check(body(0, 2), false, o); // duplicate
  v.check(body(0, 2), true, o); // redelivered: allowed
  const corrupt = body(0, 3);
  corrupt[40] ^= 0xff;
  v.check(corrupt, false, o);
  const r = v.result([5]); // seq 4 never arrived
  assert.equal(r.ok, false);
  assert.equal(r.outOfOrder, 1);
  assert.equal(r.duplicates, 1);
  assert.equal(r.redelivered, 1);
  assert.equal(r.corrupt, 1);
  assert.equal(r.missing, 1);
  assert.match(r.firstError, /seq 1 after 2/);
});

check('options: explicit flags win over scenario defaults, which win over globals', () => {
  const o = resolveOptions(SCENARIOS.backlog, explicitOptions({ prefetch: '1000', size: '8' }));
  assert.equal(o.prefetch, 1000);
  assert.equal(o.ackEvery, 500); // backlog acks half a prefetch window at a time
  assert.equal(o.count, 100_000);
  assert.equal(o.persistent, true);
  assert.equal(o.size, HEADER_SIZE);
  assert.match(o.sizeNote, /raised/);
  const t = resolveOptions(SCENARIOS.throughput, explicitOptions({ producers: '2' }));
  assert.equal(t.noAck, true);
  assert.equal(t.producers, 2);
  assert.equal(t.url, GLOBAL_DEFAULTS.url);
  assert.throws(() => explicitOptions({ count: '-1' }), /--count/);
  assert.throws(() => explicitOptions({ manage: 'x' }), /--manage/);
});

check('verifier with messages left in the queue: the undelivered must be each producer\'s newest, and add up', () => {
  const size = 16;
  const pattern = makePattern(size);
  const run = (delivered, left) => {
    const v = new Verifier(size, pattern);
    const o = v.newOrderTracker();
    for (const [p, seq] of delivered) v.check(encodeBody(size, pattern, p, seq, 0), false, o);
    return v.result([10, 10], left);
  };
  const prefix = (p, n) => Array.from({ length: n }, (_, i) => [p, i]);
  // producer 0 got 0..6, producer 1 got 0..3: 3 + 6 left
  const good = run([...prefix(0, 7), ...prefix(1, 4)], 9);
  assert.equal(good.ok, true, good.firstError);
  assert.equal(good.undelivered, 9);
  assert.equal(good.missing, 0);
  // one fewer left than never delivered: a message is lost
  const lost = run([...prefix(0, 7), ...prefix(1, 4)], 8);
  assert.equal(lost.ok, false);
  assert.equal(lost.missing, 1);
  // more left than never delivered
  assert.equal(run([...prefix(0, 7), ...prefix(1, 4)], 10).ok, false);
  // a gap (seq 2 of producer 0 never came, 3..7 did): not the newest that are missing
  const gap = run([[0, 0], [0, 1], [0, 3], [0, 4], [0, 5], [0, 6], [0, 7], ...prefix(1, 4)], 9);
  assert.equal(gap.ok, false);
  assert.match(gap.firstError, /not its first/);
});

check('the suite: every entry names a scenario, every row one of its metrics, every target can be judged', async () => {
  const { SUITE, entryName, margin } = await import('./suite.mjs');
  const names = new Set();
  for (const e of SUITE) {
    const sc = SCENARIOS[e.scenario];
    assert.ok(sc !== undefined, `${entryName(e)}: scenario ${e.scenario}`);
    assert.ok(!names.has(entryName(e)), `${entryName(e)} twice`);
    names.add(entryName(e));
    assert.ok(typeof e.cond === 'string' && e.cond.length > 20, `${entryName(e)}: conditions`);
    for (const r of e.rows) assert.ok(sc.metrics.some((m) => m.key === r.key), `${entryName(e)}: ${r.key} is not a metric of ${e.scenario}`);
  }
  // the lag grid is all there
  for (const k of ['transient', 'ack', 'fanout', 'body1k']) for (const l of ['lag20k', 'lag200k', 'unbounded']) assert.ok(names.has(`${k}-${l}`), `${k}-${l}`);
  for (const n of ['body64k-lag1k', 'body64k-lag3k', 'body64k-lag20k', 'body64k-unbounded', 'publish-confirm', 'backlog-1m', 'backlog-10m', 'flood', 'delete-stall', 'purge-stall', 'topic', 'rpc-queue', 'rpc-direct', 'latency', 'idle']) assert.ok(names.has(n), n);
  assert.equal(margin({ min: 2 }, 10, 3), 1.5);
  assert.equal(margin({ max: 0.1 }, 10, 0.05), 2);
  assert.equal(margin({ warrenMax: 1024 }, 2048, null), 0.5);
  assert.equal(margin(undefined, 1, 1), null);
});

check('verifier states merge per queue: union of two consumers, overlap is a duplicate', () => {
  const size = 16;
  const pattern = makePattern(size);
  const a = new Verifier(size, pattern);
  const b = new Verifier(size, pattern);
  const oa = a.newOrderTracker();
  const ob = b.newOrderTracker();
  for (let seq = 0; seq < 100; seq++) (seq % 2 === 0 ? a : b).check(encodeBody(size, pattern, 0, seq, 0), false, seq % 2 === 0 ? oa : ob);
  const merged = new Verifier(size, pattern);
  merged.absorb(structuredClone(a.exportState()));
  merged.absorb(structuredClone(b.exportState()));
  assert.equal(merged.result([100]).ok, true);
  assert.equal(merged.result([100]).received, 100);
  b.check(encodeBody(size, pattern, 0, 0, 0), false, b.newOrderTracker()); // seq 0 again, on the other consumer
  const dup = new Verifier(size, pattern);
  dup.absorb(a.exportState());
  dup.absorb(b.exportState());
  const r = dup.result([100]);
  assert.equal(r.ok, false);
  assert.equal(r.duplicates, 1);
  assert.equal(r.missing, 0);
});

check('writeBodyInto writes what encodeBody builds', () => {
  for (const size of [16, 1024, 70_000]) {
    const pattern = makePattern(size);
    const buf = Buffer.alloc(size + 10);
    writeBodyInto(buf, 5, size, pattern, 7, 300, 1.5);
    assert.ok(buf.subarray(5, 5 + size).equals(encodeBody(size, pattern, 7, 300, 1.5)));
  }
});

check('scenario defaults: latency paces at 10k msg/s, steady runs bound the lag, the suite names real scenarios', async () => {
  assert.equal(resolveOptions(SCENARIOS.latency, {}).rate, 10_000);
  assert.equal(resolveOptions(SCENARIOS.latency, {}).warmup, 2);
  assert.equal(resolveOptions(SCENARIOS.throughput, {}).warmup, 0);
  assert.equal(resolveOptions(SCENARIOS.latency, explicitOptions({ warmup: '0' })).warmup, 0);
  assert.equal(resolveOptions(SCENARIOS.throughput, {}).maxLag, 10_000);
  assert.equal(resolveOptions(SCENARIOS.body64k, {}).maxLag, 1000);
  assert.equal(resolveOptions(SCENARIOS.body64k, {}).size, 65536);
  assert.equal(resolveOptions(SCENARIOS.throughput, explicitOptions({ 'max-lag': '0' })).maxLag, 0);
  assert.equal(resolveOptions(SCENARIOS['backlog-transient'], {}).count, 1_000_000);
  assert.throws(() => explicitOptions({ client: 'x' }), /--client/);
  for (const name of ['throughput', 'latency', 'ack', 'confirm', 'publish-confirm', 'fanout', 'topic', 'body1k', 'body64k', 'rpc-queue', 'rpc-direct', 'idle', 'backlog-transient', 'flood', 'delete-stall', 'purge-stall']) {
    assert.ok(SCENARIOS[name] !== undefined, name);
  }
});

check('raw client: a publish batch parses back into the frames a broker expects (needs dist/)', async () => {
  let P;
  try {
    P = await loadCodec();
  } catch {
    return; // not built: nothing to check against
  }
  const size = 300_000;
  const pattern = makePattern(size);
  const fake = { P, frameMax: 131072, batch: Buffer.alloc(0), batchLen: 0, flushed: [], flush() {
    this.flushed.push(Buffer.from(this.batch.subarray(0, this.batchLen)));
    this.batchLen = 0;
    return true;
  } };
  const pub = RawConnection.prototype.publisher.call(fake, 'ex', 'rk', size, true);
  fake.batch = Buffer.alloc(pub.frameBytes * 2);
  pub.publish((buf, off, _a, seq) => writeBodyInto(buf, off, size, pattern, 1, seq, 0), null, 9);
  fake.flush();
  const reader = new P.FrameReader(131072);
  reader.push(Buffer.concat(fake.flushed));
  const frames = [];
  for (let f = reader.next(); f !== null; f = reader.next()) frames.push(f);
  assert.equal(frames[0].type, 1);
  const m = P.decodeMethod(frames[0].payload);
  assert.equal(m.id, P.MethodId.BasicPublish);
  assert.equal(m.args.exchange, 'ex');
  assert.equal(m.args.routingKey, 'rk');
  assert.equal(frames[1].type, 2);
  assert.equal(Number(frames[1].payload.readBigUInt64BE(4)), size);
  const bodies = frames.slice(2);
  assert.equal(bodies.length, 3); // 300,000 B over frames of at most 131,064 B
  assert.ok(bodies.every((f) => f.type === 3 && f.payload.length <= 131072 - 8));
  assert.ok(Buffer.concat(bodies.map((f) => f.payload)).equals(encodeBody(size, pattern, 1, 9, 0)));
});

let failed = 0;
for (const { name, fn } of checks) {
  try {
    await fn();
    process.stdout.write(`ok   ${name}\n`);
  } catch (err) {
    failed++;
    process.stdout.write(`FAIL ${name}\n  ${err.stack}\n`);
  }
}
process.stdout.write(`${checks.length - failed}/${checks.length} checks passed\n`);
process.exit(failed === 0 ? 0 : 1);
