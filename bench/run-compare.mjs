#!/usr/bin/env node
// Runs one scenario against Warren and RabbitMQ, alternating A B A B, and prints the
// median of each headline metric and the Warren/RabbitMQ ratio. (The performance issue's
// whole suite, with its targets, is run-suite.mjs.)
//   node bench/run-compare.mjs <scenario> [--repeat 3] [--rabbitmq-url amqp://…]
//        [--rabbitmq-ctl] [perf.mjs options…]
// Warren is started here for every run (child process from dist/, fresh temp data dir,
// free port) so runs never share state. RabbitMQ is the running broker at --rabbitmq-url;
// with --rabbitmq-ctl the runner also restarts it for the backlog restart phase
// (rabbitmqctl stop_app / start_app), otherwise that phase is skipped for RabbitMQ.
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RabbitMqBroker, ExternalBroker, WarrenBroker } from './lib/broker-control.mjs';
import { PERF_FLAGS, explicitOptions } from './lib/options.mjs';
import { formatNumber, formatRecord, table } from './lib/report.mjs';
import { machineNote, runScenario } from './lib/runner.mjs';
import { SCENARIOS } from './scenarios/index.mjs';

const USAGE = `Usage: node bench/run-compare.mjs <scenario> [options]

  --repeat <n>            runs per broker, alternating Warren, RabbitMQ, Warren, … (default 3)
  --rabbitmq-url <url>    RabbitMQ to compare with (default amqp://guest:guest@127.0.0.1:5672)
  --rabbitmq-ctl          local RabbitMQ: find beam.smp for RSS/CPU and restart it with rabbitmqctl
  --rabbitmq-pid <pid>    RabbitMQ process for RSS/CPU when not using --rabbitmq-ctl
  --only <warren|rabbitmq>  run one side only
  --out <file>            append every run's JSON line to this file
  plus the perf.mjs options (--size, --count, --duration, --producers, …; not --url/--manage)

Scenarios: ${Object.keys(SCENARIOS).join(', ')}
`;

const { values, positionals } = parseArgs({
  options: {
    ...PERF_FLAGS,
    repeat: { type: 'string' },
    'rabbitmq-url': { type: 'string' },
    'rabbitmq-ctl': { type: 'boolean' },
    'rabbitmq-pid': { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
  },
  allowPositionals: true,
});
if (values.help || positionals.length !== 1 || SCENARIOS[positionals[0]] === undefined) {
  process.stdout.write(USAGE);
  process.exit(values.help ? 0 : 2);
}
const scenario = SCENARIOS[positionals[0]];
const repeat = Number(values.repeat ?? 3);
const rabbitUrl = values['rabbitmq-url'] ?? 'amqp://guest:guest@127.0.0.1:5672';
const explicit = explicitOptions(values);
delete explicit.url;
delete explicit.manage;
const sides = values.only ? [values.only] : ['warren', 'rabbitmq'];
const log = (line) => process.stderr.write(`${line}\n`);

/** records per side */
const records = { warren: [], rabbitmq: [] };
let failed = false;

for (let i = 0; i < repeat; i++) {
  for (const side of sides) {
    log(`— run ${i + 1}/${repeat}: ${scenario.name} against ${side}`);
    let broker;
    if (side === 'warren') {
      broker = await WarrenBroker.start({ restartSignal: explicit.restartSignal ?? 'SIGKILL', nodeArgs: explicit.warrenNodeArgs ?? [], logFile: explicit.warrenLog ?? null, args: explicit.warrenArgs ?? [] });
    }
    else if (values['rabbitmq-ctl']) broker = new RabbitMqBroker(rabbitUrl);
    else broker = new ExternalBroker(rabbitUrl, values['rabbitmq-pid'] ? Number(values['rabbitmq-pid']) : null);
    let record;
    try {
      record = await runScenario(scenario.name, { ...explicit, url: broker.url }, { broker, log });
    } finally {
      await broker.stop();
    }
    records[side].push(record);
    if (!record.ok) failed = true;
    log(formatRecord(record));
    if (values.out) appendFileSync(values.out, `${JSON.stringify(record)}\n`);
  }
}

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const rows = [['metric', 'Warren', 'RabbitMQ', 'Warren/RabbitMQ', 'better']];
const summary = { scenario: scenario.name, date: new Date().toISOString(), machine: machineNote(), repeat, options: explicit, metrics: {} };
for (const m of scenario.metrics) {
  const w = median(records.warren.map((r) => r.metrics?.[m.key]));
  const r = median(records.rabbitmq.map((x) => x.metrics?.[m.key]));
  const ratio = w !== null && r !== null && r !== 0 ? Math.round((w / r) * 100) / 100 : null;
  summary.metrics[m.key] = { warren: w, rabbitmq: r, ratio };
  rows.push([m.label, formatNumber(w), formatNumber(r), ratio === null ? 'n/a' : `${ratio}×`, m.better]);
}
rows.push(['runs verified ok', `${records.warren.filter((r) => r.ok).length}/${records.warren.length}`, `${records.rabbitmq.filter((r) => r.ok).length}/${records.rabbitmq.length}`, '', '']);
process.stdout.write(`${scenario.name}: medians of ${repeat} run(s) per broker, alternating Warren/RabbitMQ\n${table(rows)}\n`);
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exit(failed ? 1 : 0);
