// The suite's contents: which scenario runs under which conditions, which figures it
// shows and the target each has (issue #9, "Backlogs without a cliff"). run-suite.mjs
// runs it; bench/README.md documents it.
//
// An entry is { name, scenario, options, cond, rows, repeat?, sides?, smoke?, timeout? }:
//  - options: the scenario's options for this entry (--duration, --repeat and --client
//    of run-suite.mjs apply on top, unless the entry fixes them);
//  - cond: the conditions in words, printed with every figure;
//  - rows: { key, label, target? } with key a metric of the scenario; target is a bound on
//    Warren/RabbitMQ ({ min: 2 }: at least twice RabbitMQ's; { max: 0.1 }: at most a
//    tenth) or on Warren's own figure ({ warrenMax: 1024 }: at most 1,024);
//  - repeat: runs per broker when the entry fixes it (long runs);
//  - sides: ['warren'] for an entry RabbitMQ is not run for (and why, in `rabbitNote`);
//  - smoke: options that replace `options` in smoke mode (--smoke);
//  - timeout: seconds one run may take before the suite gives up on it.

const fmt = (n) => n.toLocaleString('en-US');

/**
 * How long consumers may take to catch up after a bounded-lag window (then what is left is
 * counted); unbounded windows count at once (a consumer far behind would take minutes).
 */
const LAG_CATCH_UP = 10;

const LAGS = [
  { id: 'lag20k', maxLag: 20_000 },
  { id: 'lag200k', maxLag: 200_000 },
  { id: 'unbounded', maxLag: 0 },
];

const KINDS = [
  { id: 'transient', scenario: 'throughput', label: 'transient 16 B', what: '1 producer → 1 queue → 1 no-ack consumer, 16 B transient', delivered: 'delivered msg/s' },
  { id: 'ack', scenario: 'ack', label: 'manual ack, prefetch 100', what: '1 producer → 1 queue → 1 consumer acking each message, prefetch 100, 16 B transient', delivered: 'delivered msg/s' },
  { id: 'fanout', scenario: 'fanout', label: 'fanout × 4', what: '1 producer → fanout exchange → 4 queues, 1 no-ack consumer each, 16 B transient', delivered: 'deliveries/s (4 queues)' },
  { id: 'body1k', scenario: 'body1k', label: '1 KiB', what: '1 producer → 1 queue → 1 no-ack consumer, 1 KiB transient', delivered: 'delivered msg/s' },
];

function lagText(maxLag) {
  return maxLag === 0 ? 'no lag limit' : `lag ${fmt(maxLag)}`;
}

function lagCond(maxLag) {
  return maxLag === 0
    ? 'the producer never waits for the consumer (only for its socket); rates over the publishing window, then what is left in the queue is counted'
    : `the producer pauses while it is more than ${fmt(maxLag)} messages per queue ahead of the consumers`;
}

const lagEntries = [];
for (const k of KINDS) {
  for (const lag of LAGS) {
    const rows = [];
    const base = `${k.label}, ${lagText(lag.maxLag)}`;
    if (lag.maxLag === 0) rows.push({ key: 'publishRate', label: `${base}: published msg/s` });
    rows.push({ key: 'windowConsumeRate', label: `${base}: ${k.delivered}`, target: { min: 2 } });
    if (lag.maxLag === 0) rows.push({ key: 'lagEnd', label: `${base}: consumer behind at the end, msg` });
    lagEntries.push({ name: `${k.id}-${lag.id}`, scenario: k.scenario, options: { maxLag: lag.maxLag, catchUp: lag.maxLag === 0 ? 0 : LAG_CATCH_UP }, cond: `${k.what}; ${lagCond(lag.maxLag)}`, rows });
  }
}

const BIG_LAGS = [
  { id: 'lag1k', maxLag: 1024 },
  { id: 'lag3k', maxLag: 3000 },
  { id: 'lag20k', maxLag: 20_000 },
  { id: 'unbounded', maxLag: 0 },
];
for (const lag of BIG_LAGS) {
  const base = `64 KiB, ${lagText(lag.maxLag)}`;
  const rows = [];
  if (lag.maxLag === 0) rows.push({ key: 'publishMBps', label: `${base}: published MB/s` });
  rows.push({ key: 'windowConsumeMBps', label: `${base}: delivered MB/s`, target: { min: 1 } });
  if (lag.maxLag === 0) rows.push({ key: 'lagEndMB', label: `${base}: consumer behind at the end, MB` });
  lagEntries.push({ name: `body64k-${lag.id}`, scenario: 'body64k', options: { maxLag: lag.maxLag, catchUp: lag.maxLag === 0 ? 0 : LAG_CATCH_UP }, cond: `1 producer → 1 queue → 1 no-ack consumer, 64 KiB transient (MB = 10^6 B); ${lagCond(lag.maxLag)}`, rows });
}

// the same body size persistent into a durable queue (what a user with big persistent messages does),
// at a short lag, past the write-behind and paging thresholds, and with no lag limit
for (const lag of [BIG_LAGS[0], BIG_LAGS[2], BIG_LAGS[3]]) {
  const base = `64 KiB persistent, durable queue, ${lagText(lag.maxLag)}`;
  const rows = [];
  if (lag.maxLag === 0) rows.push({ key: 'publishMBps', label: `${base}: published MB/s` });
  rows.push({ key: 'windowConsumeMBps', label: `${base}: delivered MB/s`, target: { min: 1 } });
  if (lag.maxLag === 0) rows.push({ key: 'lagEndMB', label: `${base}: consumer behind at the end, MB` });
  lagEntries.push({
    name: `body64k-persistent-${lag.id}`,
    scenario: 'body64k',
    options: { persistent: true, maxLag: lag.maxLag, catchUp: lag.maxLag === 0 ? 0 : LAG_CATCH_UP },
    cond: `1 producer → 1 durable queue → 1 no-ack consumer, 64 KiB persistent without confirms (MB = 10^6 B); ${lagCond(lag.maxLag)}`,
    rows,
  });
}

/** delete-stall / purge-stall: a big durable queue deleted or purged beside a confirming bystander */
function stallEntry(op) {
  const during = op === 'delete' ? 'the 10 s from the delete (at least 2 s after delete-ok)' : 'the 10 s from the purge (at least 2 s after purge-ok)';
  return {
    name: `${op}-stall`,
    scenario: `${op}-stall`,
    options: { count: 300_000 },
    smoke: { count: 30_000 },
    cond: `a durable queue of 300,000 persistent 16 B messages is ${op}d while a bystander publishes a persistent message with confirms every 5 ms to another durable queue; its longest confirm wait during ${during} minus its longest in the 10 s before (Warren removes the entries in the background after ${op}-ok, about 8 s for 300k on the bench machine, inside the window)`,
    rows: [
      { key: 'stallExcessMs', label: `${op} 300k-message queue: extra confirm wait on another queue, ms`, target: { warrenMax: 5 } },
      { key: 'stallMaxMs', label: `${op} 300k: longest confirm wait on another queue, ms` },
      { key: 'baselineMaxMs', label: `${op} 300k: longest confirm wait in the 10 s before, ms` },
      { key: 'stallP99Ms', label: `${op} 300k: confirm wait p99 on another queue during the ${op}, ms` },
      { key: 'baselineP99Ms', label: `${op} 300k: confirm wait p99 in the 10 s before, ms` },
      { key: 'deleteMs', label: `${op} 300k: queue.${op} round trip, ms` },
    ],
  };
}

export const SUITE = [
  ...lagEntries,
  {
    name: 'publish-confirm',
    scenario: 'publish-confirm',
    options: {},
    cond: '1 producer, persistent 16 B, durable queue, confirm window 256, no consumer while publishing (every confirm waits for the disk); drained and verified afterwards',
    rows: [
      { key: 'publishRate', label: 'publish-only persistent + confirms: confirmed msg/s', target: { min: 1.5 } },
      { key: 'drainRate', label: 'publish-only persistent: drain afterwards, msg/s' },
    ],
  },
  {
    name: 'confirm',
    scenario: 'confirm',
    options: {},
    cond: '1 producer, persistent 16 B, durable queue, confirm window 256, 1 no-ack consumer; producer at most 10,000 ahead (the scenario\'s default)',
    rows: [{ key: 'publishRate', label: 'persistent + confirms with a consumer, lag 10,000: confirmed msg/s', target: { min: 1.5 } }],
  },
  {
    name: 'topic',
    scenario: 'topic',
    options: {},
    cond: 'topic exchange with 1,000 bindings (`*` and `#` patterns over 10 queues), the key matches 1; 16 B transient, 1 no-ack consumer; producer at most 10,000 ahead (the scenario\'s default)',
    rows: [{ key: 'windowConsumeRate', label: 'topic, 1,000 bindings, lag 10,000: delivered msg/s', target: { min: 2 } }],
  },
  {
    name: 'latency',
    scenario: 'latency',
    options: { rate: 10_000 },
    cond: '16 B transient at a fixed 10,000 msg/s, 1 no-ack consumer; messages of the first 2 s (warm-up) verified but not counted',
    rows: [
      { key: 'latencyP50Ms', label: 'latency at 10k msg/s, p50 ms' },
      { key: 'latencyP99Ms', label: 'latency at 10k msg/s, p99 ms', target: { max: 1 } },
      { key: 'latencyP999Ms', label: 'latency at 10k msg/s, p99.9 ms' },
    ],
  },
  {
    name: 'latency-cold',
    scenario: 'latency',
    options: { rate: 10_000, warmup: 0 },
    cond: 'as latency, counted from the first message (a fresh Warren against a RabbitMQ that has been running)',
    rows: [
      { key: 'latencyP50Ms', label: 'latency from a cold start, p50 ms' },
      { key: 'latencyP99Ms', label: 'latency from a cold start, p99 ms' },
    ],
  },
  {
    name: 'rpc-queue',
    scenario: 'rpc-queue',
    options: {},
    cond: 'one client, sequential calls; reply to an exclusive server-named queue with correlation_id; server prefetch 1, acks after replying',
    rows: [
      { key: 'callRate', label: 'RPC, reply queue: calls/s', target: { min: 1.5 } },
      { key: 'latencyP50Ms', label: 'RPC, reply queue: round trip p50 ms' },
    ],
  },
  {
    name: 'rpc-direct',
    scenario: 'rpc-direct',
    options: {},
    cond: 'as rpc-queue with direct reply-to (amq.rabbitmq.reply-to)',
    rows: [
      { key: 'callRate', label: 'RPC, direct reply-to: calls/s', target: { min: 1.5 } },
      { key: 'latencyP50Ms', label: 'RPC, direct reply-to: round trip p50 ms' },
    ],
  },
  // RabbitMQ on this host accepts at most 831 connections (832 sockets of a 1024-fd limit),
  // so the suite opens 800 on both brokers; --connections 1000 runs the exact figure.
  {
    name: 'idle',
    scenario: 'idle',
    options: { connections: 800 },
    smoke: { connections: 100 },
    cond: '800 idle connections with one channel each (RabbitMQ here accepts at most 831); RSS growth / connections, once the RSS is stable',
    rows: [{ key: 'rssPerConnectionKiB', label: 'RSS per idle connection, KiB', target: { max: 0.5 } }],
  },
  stallEntry('delete'),
  stallEntry('purge'),
  {
    name: 'backlog-1m',
    scenario: 'backlog-transient',
    options: { count: 1_000_000 },
    smoke: { count: 100_000 },
    cond: '1,000,000 × 16 B transient into a non-durable queue with no consumer (1 producer, no confirms, no lag limit), until the queue reports them all; RSS once stable; then 1 no-ack consumer drains and verifies all',
    rows: [
      { key: 'fillRate', label: '1M backlog: fill msg/s', target: { min: 1.5 } },
      { key: 'drainRate', label: '1M backlog: drain msg/s', target: { min: 1.5 } },
      { key: 'rssPeakMiB', label: '1M backlog: peak RSS, MiB', target: { max: 0.1 } },
      { key: 'rssFullBacklogMiB', label: '1M backlog: RSS holding it, MiB' },
    ],
  },
  {
    name: 'flood',
    scenario: 'flood',
    options: { duration: 60 },
    smoke: { duration: 5 },
    repeat: 1,
    timeout: 900,
    cond: '60 s of persistent 1 KiB publishes without confirms and without a lag limit into a durable queue; 1 consumer acking 1,000 msg/s (prefetch 100); a bystander publishing with confirms every 10 ms to another durable queue; 1 run per broker',
    rows: [
      { key: 'rssPeakMiB', label: 'persistent flood 60 s: peak RSS, MiB', target: { warrenMax: 1024 } },
      { key: 'publishRate', label: 'persistent flood: published msg/s' },
      { key: 'probeConfirmMaxMs', label: 'persistent flood: bystander\'s longest confirm wait, ms' },
      { key: 'deleteMs', label: 'persistent flood: queue.delete of the backlog, ms' },
    ],
  },
  {
    // the flood with big bodies: the backlog grows on disk, so every body goes through the store
    name: 'flood-64k',
    scenario: 'flood',
    options: { duration: 30, size: 65536 },
    smoke: { duration: 5 },
    timeout: 900,
    cond: '30 s of persistent 64 KiB publishes without confirms and without a lag limit into a durable queue; 1 consumer acking 1,000 msg/s (prefetch 100): the backlog grows by every message the consumer does not take; a bystander publishing with confirms every 10 ms to another durable queue',
    rows: [
      { key: 'publishRate', label: 'persistent 64 KiB flood 30 s: published msg/s (a backlog on disk)', target: { min: 1 } },
      { key: 'rssPeakMiB', label: 'persistent 64 KiB flood: peak RSS, MiB', target: { warrenMax: 1024 } },
      { key: 'probeConfirmMaxMs', label: 'persistent 64 KiB flood: bystander\'s longest confirm wait, ms' },
    ],
  },
  {
    name: 'backlog-10m',
    scenario: 'backlog-transient',
    options: { count: 10_000_000 },
    smoke: { count: 300_000 },
    repeat: 1,
    sides: ['warren'],
    rabbitNote: 'not run: RabbitMQ 3.10 here could not hold it (see bench/README.md); --rabbitmq-10m tries',
    timeout: 1800,
    cond: 'as the 1M backlog with 10,000,000 messages; 1 run, Warren only',
    rows: [
      { key: 'fillRate', label: '10M backlog: fill msg/s' },
      { key: 'drainRate', label: '10M backlog: drain msg/s' },
      { key: 'rssPeakMiB', label: '10M backlog: peak RSS, MiB' },
      { key: 'rssFullBacklogMiB', label: '10M backlog: RSS holding it, MiB' },
    ],
  },
];

export function entryName(e) {
  return e.name ?? e.scenario;
}

export function targetText(t) {
  if (t === undefined || t === null) return '';
  if (t.min !== undefined) return `≥ ${t.min}×`;
  if (t.warrenMax !== undefined) return `Warren ≤ ${fmt(t.warrenMax)}`;
  return t.max === 1 ? '≤ RabbitMQ' : `≤ ${t.max}×`;
}

/**
 * How far a figure is from failing its target: > 1 met with room, < 1 missed. For "at
 * least" targets ratio / min, for "at most" ones max / ratio (or bound / Warren's figure).
 */
export function margin(t, warren, ratio) {
  if (t === undefined || t === null) return null;
  if (t.warrenMax !== undefined) return warren === null ? null : warren <= 0 ? Infinity : t.warrenMax / warren;
  if (ratio === null) return null;
  if (t.min !== undefined) return ratio / t.min;
  return ratio <= 0 ? Infinity : t.max / ratio;
}
