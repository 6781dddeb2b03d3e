#!/usr/bin/env node
// The performance issue's suite: every scenario against Warren and RabbitMQ, alternating
// Warren, RabbitMQ, Warren, … per scenario, and one table of medians, ratios and targets.
//   node bench/run-suite.mjs [--repeat 3] [--duration 5] [--scenarios a,b,…] [--out runs.jsonl]
// Warren is started from dist/ for every run (fresh temp data dir, free port); RabbitMQ is
// the running broker at --rabbitmq-url, with beam.smp's pid for RSS/CPU (it is never
// restarted). With the defaults the whole suite takes about 12-15 minutes.
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RabbitMqBroker, WarrenBroker } from './lib/broker-control.mjs';
import { formatNumber, table } from './lib/report.mjs';
import { machineNote, runScenario, warrenBuild } from './lib/runner.mjs';

/**
 * The scenarios. `rows` are the figures in the table; `target` is a bound on
 * Warren/RabbitMQ: { min: 2 } means "at least twice RabbitMQ", { max: 0.5 } "at most half".
 */
export const SUITE = [
  { scenario: 'throughput', rows: [
    { key: 'consumeRate', label: 'transient 16 B, delivered msg/s', target: { min: 2 } },
    { key: 'publishRate', label: 'transient 16 B, published msg/s' },
  ] },
  // latency counts messages sent after a 2 s warm-up (the scenario's default): each Warren
  // run starts a fresh process, while RabbitMQ has been running (and warm) all along.
  // latency-cold counts from the first message, JIT warm-up included, for the record.
  { scenario: 'latency', options: { rate: 10_000 }, rows: [
    { key: 'latencyP50Ms', label: 'latency at 10k msg/s, p50 ms' },
    { key: 'latencyP99Ms', label: 'latency at 10k msg/s, p99 ms', target: { max: 1 } },
    { key: 'latencyP999Ms', label: 'latency at 10k msg/s, p99.9 ms' },
  ] },
  { name: 'latency-cold', scenario: 'latency', options: { rate: 10_000, warmup: 0 }, rows: [
    { key: 'latencyP50Ms', label: 'from a cold start, p50 ms' },
    { key: 'latencyP99Ms', label: 'from a cold start, p99 ms' },
  ] },
  { scenario: 'ack', rows: [{ key: 'consumeRate', label: 'manual acks, prefetch 100, msg/s', target: { min: 2 } }] },
  { scenario: 'confirm', rows: [{ key: 'publishRate', label: 'persistent + confirms (256), msg/s', target: { min: 1.5 } }] },
  { scenario: 'fanout', rows: [
    { key: 'publishRate', label: 'fanout to 4 queues, publishes/s', target: { min: 2 } },
    { key: 'consumeRate', label: 'fanout to 4 queues, deliveries/s', target: { min: 2 } },
  ] },
  { scenario: 'topic', rows: [{ key: 'consumeRate', label: 'topic, 1,000 bindings, msg/s', target: { min: 2 } }] },
  { scenario: 'body1k', rows: [{ key: 'consumeRate', label: '1 KiB bodies, msg/s', target: { min: 2 } }] },
  { scenario: 'body64k', rows: [
    { key: 'consumeRate', label: '64 KiB bodies, msg/s' },
    { key: 'consumeMBps', label: '64 KiB bodies, MB/s' },
  ] },
  { scenario: 'rpc-queue', rows: [
    { key: 'callRate', label: 'RPC, reply queue, calls/s', target: { min: 1.5 } },
    { key: 'latencyP50Ms', label: 'RPC, reply queue, p50 ms' },
  ] },
  { scenario: 'rpc-direct', rows: [
    { key: 'callRate', label: 'RPC, direct reply-to, calls/s', target: { min: 1.5 } },
    { key: 'latencyP50Ms', label: 'RPC, direct reply-to, p50 ms' },
  ] },
  // RabbitMQ on this host accepts at most 831 connections (832 sockets of a 1024-fd limit), so
  // the suite opens 800 on both brokers; --connections 1000 runs the exact figure.
  { scenario: 'idle', options: { connections: 800 }, rows: [{ key: 'rssPerConnectionKiB', label: 'RSS per idle connection, KiB', target: { max: 0.5 } }] },
  { scenario: 'backlog-transient', options: { count: 1_000_000 }, rows: [
    { key: 'rssFullBacklogMiB', label: 'RSS holding 1M transient 16 B, MiB', target: { max: 0.1 } },
    { key: 'rssGrowthMiB', label: '… of which growth for the backlog, MiB' },
  ] },
];

const USAGE = `Usage: node bench/run-suite.mjs [options]

  --repeat <n>            runs per broker and scenario, alternating Warren/RabbitMQ (default 3)
  --duration <s>          length of each steady-state and RPC run (default 8)
  --scenarios <a,b,…>     run only these (default: all: ${SUITE.map((e) => e.name ?? e.scenario).join(', ')})
  --rabbitmq-url <url>    RabbitMQ to compare with (default amqp://guest:guest@127.0.0.1:5672)
  --client <raw|amqplib>  producer/consumer client for the message-rate scenarios (default raw)
  --connections <n>       idle: connections to open (default 800)
  --count <n>             backlog-transient: messages (default 1000000)
  --out <file>            append every run's JSON line to this file
  --json                  print only the summary JSON line
`;

const { values } = parseArgs({
  options: {
    repeat: { type: 'string' },
    duration: { type: 'string' },
    scenarios: { type: 'string' },
    'rabbitmq-url': { type: 'string' },
    client: { type: 'string' },
    connections: { type: 'string' },
    count: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const repeat = Number(values.repeat ?? 3);
const duration = Number(values.duration ?? 8);
const rabbitUrl = values['rabbitmq-url'] ?? 'amqp://guest:guest@127.0.0.1:5672';
const wanted = values.scenarios ? values.scenarios.split(',').map((s) => s.trim()) : null;
const entries = wanted === null ? SUITE : SUITE.filter((e) => wanted.includes(e.name ?? e.scenario));
if (!Number.isInteger(repeat) || repeat < 1 || !(duration > 0) || entries.length === 0 || (wanted !== null && entries.length !== wanted.length)) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const log = (line) => process.stderr.write(`${line}\n`);

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function targetText(t) {
  if (t === undefined) return '';
  if (t.min !== undefined) return `≥ ${t.min}×`;
  return t.max === 1 ? '≤ RabbitMQ' : `≤ ${t.max}×`;
}

const suiteStart = performance.now();
const rows = [['scenario', 'metric', 'Warren', 'RabbitMQ', 'W/R', 'target', 'met', 'verified W R']];
const summary = { suite: 'issue5', date: new Date().toISOString(), machine: machineNote(), warren: warrenBuild(), repeat, duration, results: [] };
let failedRuns = 0;

for (const entry of entries) {
  const explicit = { duration, ...entry.options };
  if (values.client !== undefined) explicit.client = values.client;
  if (values.connections !== undefined && entry.scenario === 'idle') explicit.connections = Number(values.connections);
  if (values.count !== undefined && entry.scenario === 'backlog-transient') explicit.count = Number(values.count);
  const records = { warren: [], rabbitmq: [] };
  for (let i = 0; i < repeat; i++) {
    for (const side of ['warren', 'rabbitmq']) {
      log(`— ${entry.name ?? entry.scenario} ${i + 1}/${repeat} against ${side} (suite ${Math.round((performance.now() - suiteStart) / 1000)} s)`);
      const broker = side === 'warren' ? await WarrenBroker.start() : new RabbitMqBroker(rabbitUrl);
      let record;
      try {
        record = await runScenario(entry.scenario, { ...explicit, url: broker.url }, { broker, log });
      } finally {
        await broker.stop();
      }
      records[side].push(record);
      if (!record.ok) {
        failedRuns++;
        log(`  run FAILED: ${record.error ?? record.verification?.firstError ?? record.verification?.clientError ?? 'unknown'}`);
      }
      if (values.out) appendFileSync(values.out, `${JSON.stringify(record)}\n`);
    }
  }
  const okW = records.warren.filter((r) => r.ok).length;
  const okR = records.rabbitmq.filter((r) => r.ok).length;
  for (const row of entry.rows) {
    const w = median(records.warren.map((r) => r.metrics?.[row.key]));
    const r = median(records.rabbitmq.map((x) => x.metrics?.[row.key]));
    const exact = w !== null && r !== null && r !== 0 ? w / r : null;
    const ratio = exact === null ? null : Number(exact.toPrecision(3));
    let met = '';
    if (row.target !== undefined) {
      if (exact === null) met = 'n/a';
      else met = (row.target.min !== undefined ? exact >= row.target.min : exact <= row.target.max) ? 'yes' : 'NO';
      if (okW < repeat) met += ' (unverified)';
    }
    rows.push([entry.name ?? entry.scenario, row.label, formatNumber(w), formatNumber(r), ratio === null ? 'n/a' : `${ratio}×`, targetText(row.target), met, `${okW}/${repeat} ${okR}/${repeat}`]);
    summary.results.push({ scenario: entry.name ?? entry.scenario, metric: row.key, label: row.label, warren: w, rabbitmq: r, ratio, target: row.target ?? null, met: met === '' ? null : met.startsWith('yes'), verified: { warren: okW, rabbitmq: okR, runs: repeat } });
  }
  log(table(rows));
}

summary.seconds = Math.round((performance.now() - suiteStart) / 1000);
if (!values.json) {
  process.stdout.write(`issue5 suite: medians of ${repeat} run(s) per broker, alternating Warren/RabbitMQ; ${summary.seconds} s; load ${summary.machine.loadavg1m} at start\n`);
  process.stdout.write(`${table(rows)}\n`);
}
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exit(failedRuns === 0 ? 0 : 1);
