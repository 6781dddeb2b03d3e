#!/usr/bin/env node
// Warren's load generator, in the spirit of lavinmqperf / RabbitMQ PerfTest.
//   node bench/perf.mjs <scenario> [options]      (see --help)
// Prints progress on stderr, a human table and one JSON line on stdout; exits 1 when a
// delivery failed verification or the run failed.
import { parseArgs } from 'node:util';
import { PERF_FLAGS, explicitOptions } from './lib/options.mjs';
import { formatRecord } from './lib/report.mjs';
import { runScenario } from './lib/runner.mjs';
import { SCENARIOS } from './scenarios/index.mjs';

const USAGE = `Usage: node bench/perf.mjs <scenario> [options]

Scenarios:
${Object.values(SCENARIOS).map((s) => `  ${s.name.padEnd(18)} ${s.description}`).join('\n')}

Options:
  --url <amqp url>      broker (default amqp://guest:guest@127.0.0.1:5672)
  --manage <who>        none (default) | warren: start Warren from dist/ (fresh temp data dir,
                        free port), kill -9 / restart it for the backlog restart |
                        rabbitmq: the local RabbitMQ at --url, restart via rabbitmqctl
  --size <bytes>        body size, >= 16 (default 16)
  --count <n>           messages to publish (backlog 100000, backlog-transient 1000000; others run --duration)
  --duration <s>        length of throughput/ack/confirm runs (default 10)
  --warmup <s>          steady scenarios: run this long first; messages sent then are verified
                        but left out of the latency figures (latency: 2, others 0)
  --producers <n>       producer connections (default 1)
  --consumers <n>       consumer connections (default 1; backlog always drains with 1)
  --confirm <n>         publisher-confirm window, 0 = no confirms (backlog, confirm: 256)
  --prefetch <n>        consumer basic.qos prefetch-count (default 100; backlog 500)
  --ack-every <n>       ack with multiple=true every n deliveries (backlog: prefetch/2)
  --no-ack              consume in no-ack mode
  --persistent | --transient   delivery mode (backlog, confirm: persistent)
  --rate <msg/s>        total publish rate over all producers, 0 = as fast as possible (latency: 10000)
  --max-lag <n>         producers pause while consumers are n messages per queue behind
                        (steady scenarios: 10000, body64k 1000; 0 = unbounded)
  --catch-up <s>        steady scenarios: how long consumers may take to receive the rest once
                        producers stop (default 120); what is still queued then is counted
                        (basic.cancel, queue depth) and must be each producer's newest messages
  --ack-rate <msg/s>    manual-ack consumers release their acks at this rate (a slow consumer;
                        flood: 1000)
  --probe-interval <ms> flood (default 10), delete-stall (5): the bystander's publish interval
  --stall <s>           backlog-transient: end the fill after this long without progress (default 30)
  --warren-args="<o>"   with --manage warren: extra \`warren start\` options (default: its defaults)
  --client <c>          raw (default: minimal client on Warren's dist/protocol codec) | amqplib
  --connections <n>     idle: connections to open (default 1000)
  --calls <n>           rpc-queue / rpc-direct: number of calls instead of --duration
  --broker-pid <pid>    broker process for RSS/CPU from /proc (auto with --manage)
  --no-restart          backlog: skip the restart phase
  --restart-signal <s>  backlog with --manage warren: KILL (default, crash recovery) or TERM
  --warren-node-args=<flags>  extra node flags for a managed Warren (e.g. --warren-node-args=--trace-gc;
                        the = is needed because the value starts with a dash)
  --warren-log <file>   append a managed Warren's stdout (log, GC trace) to this file
  --settle <s>          idle before reading RSS at full backlog / after drain (default 2)
  --timeout <s>         bound on the whole run (default 900)
  --json                print only the JSON line
`;

const { values, positionals } = parseArgs({ options: PERF_FLAGS, allowPositionals: true });
if (values.help || positionals.length !== 1 || SCENARIOS[positionals[0]] === undefined) {
  process.stdout.write(USAGE);
  process.exit(values.help ? 0 : 2);
}
let explicit;
try {
  explicit = explicitOptions(values);
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
const log = (line) => process.stderr.write(`${line}\n`);
const record = await runScenario(positionals[0], explicit, { log });
if (!explicit.json) process.stdout.write(`${formatRecord(record)}\n`);
process.stdout.write(`${JSON.stringify(record)}\n`);
process.exit(record.ok ? 0 : 1);
