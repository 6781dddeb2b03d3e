#!/usr/bin/env node
// The performance suite (bench/suite.mjs): every entry against Warren and RabbitMQ,
// alternating Warren, RabbitMQ, Warren, … per entry, and one table of medians, ratios and
// targets, then the same rows ordered worst first.
//   node bench/run-suite.mjs [--smoke] [--repeat 3] [--duration 8] [--scenarios a,b*,…]
//        [--out runs.jsonl] [--markdown table.md]
// Warren is started from dist/ for every run as `npm start` runs it (its defaults, a
// fresh data dir, a free port); RabbitMQ is the running broker at --rabbitmq-url, with
// beam.smp's pid for RSS/CPU (it is never restarted). Documented in bench/README.md.
import { appendFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { RabbitMqBroker, WarrenBroker, brokerNodeFlags } from './lib/broker-control.mjs';
import { formatNumber, table } from './lib/report.mjs';
import { machineNote, runScenario, warrenBuild } from './lib/runner.mjs';
import { SUITE, entryName, margin, targetText } from './suite.mjs';
import { suiteMarkdown, worstFirst } from './lib/suite-markdown.mjs';

const USAGE = `Usage: node bench/run-suite.mjs [options]

  --smoke                 quick check of every entry: 1 run each, 2 s windows, small counts
                          (100k / 300k backlogs, 5 s flood, 30k delete, 100 idle connections)
  --repeat <n>            runs per broker and entry, alternating Warren/RabbitMQ (default 3;
                          entries that fix it, flood and backlog-10m, run once)
  --duration <s>          publishing window of the message-rate and RPC entries (default 8)
  --scenarios <a,b*,…>    run only these entries (a trailing * matches a prefix)
  --exclude <a,b*,…>      leave these entries out
  --sides <warren|rabbitmq|both>  run one broker only (no ratios) (default both)
  --rerun-busy <n>        repeat a run, up to n times, when other work on the machine used
                          more than --busy-cpu % of one core during it (default 1)
  --busy-cpu <pct>        the threshold for --rerun-busy (default 35)
  --rabbitmq-url <url>    RabbitMQ to compare with (default amqp://guest:guest@127.0.0.1:5672)
  --rabbitmq-10m          run backlog-10m against RabbitMQ too (it may fill this machine's memory)
  --warren-args="<opts>"  extra \`warren start\` options, e.g. "--queue-memory-budget 0.25"
  --warren-node-args="<flags>"  extra node flags for Warren, after the ones it runs with
                          (src/cli/node-flags.ts), e.g. "--no-single-threaded-gc"
                          (default none: Warren's defaults)
  --client <raw|amqplib>  producer/consumer client for the message-rate entries (default raw)
  --out <file>            append every run's JSON line to this file
  --markdown <file>       write the worst-first table (with conditions) as Markdown
  --json                  print only the summary JSON line

Entries: ${SUITE.map(entryName).join(', ')}
`;

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean' },
    repeat: { type: 'string' },
    duration: { type: 'string' },
    scenarios: { type: 'string' },
    exclude: { type: 'string' },
    sides: { type: 'string' },
    'rerun-busy': { type: 'string' },
    'busy-cpu': { type: 'string' },
    'rabbitmq-url': { type: 'string' },
    'rabbitmq-10m': { type: 'boolean' },
    'warren-args': { type: 'string' },
    'warren-node-args': { type: 'string' },
    client: { type: 'string' },
    out: { type: 'string' },
    markdown: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const smoke = values.smoke === true;
const repeat = Number(values.repeat ?? (smoke ? 1 : 3));
const duration = Number(values.duration ?? (smoke ? 2 : 8));
const rerunBusy = Number(values['rerun-busy'] ?? (smoke ? 0 : 1));
const busyCpu = Number(values['busy-cpu'] ?? 35);
const rabbitUrl = values['rabbitmq-url'] ?? 'amqp://guest:guest@127.0.0.1:5672';
const sidesWanted = values.sides ?? 'both';
const warrenArgs = (values['warren-args'] ?? '').split(/\s+/).filter(Boolean);
const warrenNodeArgs = (values['warren-node-args'] ?? '').split(/\s+/).filter(Boolean);

function matcher(list) {
  const pats = list.split(',').map((s) => s.trim()).filter(Boolean);
  return { pats, test: (name) => pats.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p)) };
}
let entries = SUITE;
let bad = false;
if (values.scenarios) {
  const m = matcher(values.scenarios);
  for (const p of m.pats) if (!SUITE.some((e) => matcher(p).test(entryName(e)))) bad = true;
  entries = entries.filter((e) => m.test(entryName(e)));
}
if (values.exclude) {
  const m = matcher(values.exclude);
  entries = entries.filter((e) => !m.test(entryName(e)));
}
if (bad || !Number.isInteger(repeat) || repeat < 1 || !(duration > 0) || entries.length === 0 || !['warren', 'rabbitmq', 'both'].includes(sidesWanted) || !Number.isInteger(rerunBusy) || rerunBusy < 0 || !(busyCpu > 0)) {
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

/** Runs one entry against one broker, bounded by the entry's timeout. */
async function runOnce(entry, side, explicit) {
  const broker = side === 'warren' ? await WarrenBroker.start({ args: warrenArgs, nodeArgs: warrenNodeArgs }) : new RabbitMqBroker(rabbitUrl);
  const timeoutS = entry.timeout ?? 600;
  let timer;
  try {
    const run = runScenario(entry.scenario, { ...explicit, url: broker.url, timeout: timeoutS }, { broker, log });
    const bound = new Promise((resolve) => {
      timer = setTimeout(() => resolve({ scenario: entry.scenario, ok: false, error: `the run took longer than ${timeoutS} s`, machine: machineNote(), metrics: {} }), (timeoutS + 60) * 1000);
    });
    return await Promise.race([run, bound]);
  } finally {
    clearTimeout(timer);
    await broker.stop();
  }
}

const suiteStart = performance.now();
const header = ['entry', 'metric', 'Warren', 'RabbitMQ', 'W/R', 'target', 'met', 'verified W R'];
const rows = [header];
const summary = {
  suite: 'issue9',
  date: new Date().toISOString(),
  smoke,
  machine: machineNote(),
  warren: { ...warrenBuild(), args: warrenArgs, nodeArgs: [...(await brokerNodeFlags()), ...warrenNodeArgs] },
  repeat,
  duration,
  results: [],
};
const loads = [];
let failedRuns = 0;

for (const entry of entries) {
  const name = entryName(entry);
  const explicit = { duration, ...(smoke && entry.smoke ? { ...entry.options, ...entry.smoke } : entry.options) };
  if (smoke && explicit.catchUp !== undefined) explicit.catchUp = Math.min(explicit.catchUp, 2);
  if (values.client !== undefined) explicit.client = values.client;
  const entryRepeat = smoke ? 1 : (entry.repeat ?? repeat);
  let sides = sidesWanted === 'both' ? ['warren', 'rabbitmq'] : [sidesWanted];
  if (entry.sides !== undefined && !(name === 'backlog-10m' && values['rabbitmq-10m'])) sides = sides.filter((s) => entry.sides.includes(s));
  const records = { warren: [], rabbitmq: [] };
  for (let i = 0; i < entryRepeat; i++) {
    for (const side of sides) {
      let record;
      for (let attempt = 0; ; attempt++) {
        log(`— ${name} ${i + 1}/${entryRepeat} against ${side}${attempt > 0 ? ` (again: ${record.machine?.otherCpuPercent} % of a core went to other work)` : ''} (suite ${Math.round((performance.now() - suiteStart) / 1000)} s, load ${loadavg()[0].toFixed(2)})`);
        record = await runOnce(entry, side, explicit);
        record.suiteEntry = name;
        record.attempt = attempt;
        if (values.out) appendFileSync(values.out, `${JSON.stringify(record)}\n`);
        const other = record.machine?.otherCpuPercent;
        if (!(typeof other === 'number' && other > busyCpu && attempt < rerunBusy)) break;
      }
      records[side].push(record);
      loads.push(record.machine?.loadavg1m, record.machine?.loadavg1mEnd);
      if (!record.ok) {
        failedRuns++;
        log(`  run FAILED: ${record.error ?? record.verification?.firstError ?? record.verification?.clientError ?? 'unknown'}`);
      }
    }
  }
  const okW = records.warren.filter((r) => r.ok).length;
  const okR = records.rabbitmq.filter((r) => r.ok).length;
  const nW = records.warren.length;
  const nR = records.rabbitmq.length;
  const busy = [...records.warren, ...records.rabbitmq].map((r) => r.machine?.otherCpuPercent).filter((x) => typeof x === 'number');
  for (const row of entry.rows) {
    const w = median(records.warren.map((r) => r.metrics?.[row.key]));
    const r = median(records.rabbitmq.map((x) => x.metrics?.[row.key]));
    const exact = w !== null && r !== null && r !== 0 ? w / r : null;
    const ratio = exact === null ? null : Number(exact.toPrecision(3));
    const m = margin(row.target, w, exact);
    let met = '';
    if (row.target !== undefined) {
      met = m === null ? 'n/a' : m >= 1 ? 'yes' : 'NO';
      if (okW < nW || nW === 0) met += ' (unverified)';
    }
    const rabbitCell = nR === 0 ? (entry.rabbitNote ? 'not run' : 'n/a') : formatNumber(r);
    rows.push([name, row.label, formatNumber(w), rabbitCell, ratio === null ? 'n/a' : `${ratio}×`, targetText(row.target), met, `${okW}/${nW} ${okR}/${nR}`]);
    summary.results.push({
      entry: name,
      scenario: entry.scenario,
      metric: row.key,
      label: row.label,
      cond: entry.cond,
      warren: w,
      rabbitmq: r,
      rabbitNote: nR === 0 ? (entry.rabbitNote ?? null) : null,
      ratio,
      target: row.target ?? null,
      margin: m === null ? null : Number(m.toPrecision(3)),
      met: row.target === undefined ? null : m !== null && m >= 1 && okW === nW && nW > 0,
      verified: { warren: okW, rabbitmq: okR, runs: { warren: nW, rabbitmq: nR } },
      runs: { warren: records.warren.map((x) => x.metrics?.[row.key] ?? null), rabbitmq: records.rabbitmq.map((x) => x.metrics?.[row.key] ?? null) },
      otherCpuPercentMax: busy.length > 0 ? Math.max(...busy) : null,
    });
  }
  log(table(rows));
}

summary.seconds = Math.round((performance.now() - suiteStart) / 1000);
const l = loads.filter((x) => typeof x === 'number');
summary.loadavg1m = { min: l.length ? Math.min(...l) : null, max: l.length ? Math.max(...l) : null };

if (values.markdown) {
  const heading = `Suite run ${summary.date} (Warren ${summary.warren.gitHead ?? 'unknown'}${warrenArgs.length || warrenNodeArgs.length ? `, started with ${[...warrenNodeArgs, ...warrenArgs].join(' ')}` : ', its defaults'}; ${smoke ? 'smoke mode, ' : ''}medians of ${repeat} alternating runs unless noted; ${summary.seconds} s; load average ${summary.loadavg1m.min}–${summary.loadavg1m.max}).`;
  writeFileSync(values.markdown, suiteMarkdown(heading, summary.results));
}

if (!values.json) {
  process.stdout.write(`issue #9 suite${smoke ? ' (smoke)' : ''}: medians of ${repeat} run(s) per broker, alternating Warren/RabbitMQ; ${summary.seconds} s; load average ${summary.loadavg1m.min}–${summary.loadavg1m.max}\n`);
  process.stdout.write(`${table(rows)}\n\nWorst first (rows with a target, by how far they are from it):\n`);
  const worst = [['entry', 'metric', 'W/R', 'target', 'met']];
  for (const x of worstFirst(summary.results).filter((y) => y.target !== null)) {
    worst.push([x.entry, x.label, x.ratio === null ? formatNumber(x.warren) : `${x.ratio}×`, targetText(x.target), x.met ? 'yes' : 'NO']);
  }
  process.stdout.write(`${table(worst)}\n`);
}
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exit(failedRuns === 0 ? 0 : 1);
