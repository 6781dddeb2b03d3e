#!/usr/bin/env node
// Replicated throughput: the same perf.mjs scenarios against a single Warren node and against a
// three-node cluster on etcd (all on this machine), alternating, with ratios.
//   npm run build && flock /tmp/bench.lock node bench/cluster.mjs [--repeat 2] [--duration 10] [--count 100000]
//     [--scenario confirm|backlog] [--cpu-prof <dir>] [--json] [--help]
// A cluster run starts one etcd member (etcd holds no messages; its load is a few keepalives)
// and three nodes; the perf client connects to the leader, and for `confirm` also through a
// follower (the proxied path). Every node keeps its data dir on the same disk.
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { brokerNodeFlags, freePort } from './lib/broker-control.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const PERF = join(ROOT, 'bench', 'perf.mjs');
const { readClusterStatus } = await import(join(ROOT, 'dist', 'cluster', 'etcd-coordinator.js'));
const NODE_FLAGS = await brokerNodeFlags();

const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '2' },
    duration: { type: 'string', default: '10' },
    count: { type: 'string', default: '100000' },
    size: { type: 'string', default: '1024' },
    scenario: { type: 'string' },
    'cpu-prof': { type: 'string' },
    threads: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(`node bench/cluster.mjs [options]   (npm run build first; run under flock /tmp/bench.lock)
  The perf.mjs scenarios against one Warren node and a three-node cluster on one etcd member,
  alternating (single, cluster) per repeat; the worst ratio first.
  --repeat <n>        rounds of every scenario on both sides (default 2; medians are quoted)
  --duration <s>      length of the confirm scenario (default 10)
  --count <n>         messages the backlog scenario publishes (default 100000)
  --size <bytes>      body size (default 1024)
  --scenario <name>   only this scenario: confirm (a consumer keeps up) or backlog (no consumer
                      while publishing, then drained)
  --cpu-prof <dir>    start every Warren node with --cpu-prof, profiles in <dir>/<side>-<node>-<run>/
                      (the nodes are killed with SIGTERM so the profiles are written)
  --threads           also print (stderr) each node's CPU seconds per thread for the run (the main
                      thread, then the others by id: libuv's pool, LevelDB's compaction, V8's
                      workers), from /proc/<pid>/task/*/stat
  --json              only the JSON summary line
  Every run also prints (stderr) the CPU seconds its broker node(s) used, all nodes together,
  and the load average, so a busy machine shows.
`);
  process.exit(0);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(`${s}\n`);

async function waitForPort(port, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port}`);
    await sleep(100);
  }
}

let profRun = 0;
const profArgs = (name) => {
  if (!values['cpu-prof']) return [];
  const dir = join(values['cpu-prof'], `${name}-${profRun}`);
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', '--cpu-prof-dir', dir];
};

function start(args, logFile) {
  const fd = openSync(logFile, 'a');
  const p = spawn(args[0], args.slice(1), { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return p;
}

/** CPU seconds a process has used so far, user and system, from /proc (Linux) */
function cpuParts(p) {
  try {
    const f = readFileSync(`/proc/${p.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return [Number(f[11]) / 100, Number(f[12]) / 100];
  } catch {
    return null;
  }
}

/** CPU seconds per thread (user + system) a process has used so far, from /proc/<pid>/task */
function threadCpu(p) {
  const out = {};
  try {
    for (const t of readdirSync(`/proc/${p.pid}/task`)) {
      try {
        const raw = readFileSync(`/proc/${p.pid}/task/${t}/stat`, 'utf8');
        const comm = raw.slice(raw.indexOf('(') + 1, raw.lastIndexOf(')'));
        // the main thread by name; the others (libuv's pool and LevelDB's compaction thread are all "node") by id
        const name = Number(t) === p.pid ? 'main' : `${comm}#${t}`;
        const f = raw.slice(raw.lastIndexOf(') ') + 2).split(' ');
        out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
      } catch {}
    }
  } catch {}
  return out;
}

/** CPU seconds (user + system) a process has used so far */
function cpuSeconds(p) {
  const parts = cpuParts(p);
  return parts === null ? null : parts[0] + parts[1];
}

async function stop(p) {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  // a profiled node must exit on its own to write its profile
  p.kill(values['cpu-prof'] && p.profiled ? 'SIGTERM' : 'SIGKILL');
  const killer = setTimeout(() => p.kill('SIGKILL'), 30_000);
  await gone;
  clearTimeout(killer);
}

function perf(scenario, url, extra) {
  const out = execFileSync(process.execPath, [PERF, scenario, '--url', url, '--json', '--size', values.size, ...extra], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const line = out.trim().split('\n').pop();
  return JSON.parse(line);
}

// confirm: a consumer keeps up (a message consumed before its batch is written is confirmed
// without reaching the disk or the followers); backlog: every message is stored and replicated
const SCENARIOS = [
  { name: 'confirm', args: () => ['--duration', values.duration], metrics: ['publishRate'] },
  { name: 'backlog', args: () => ['--count', values.count, '--no-restart'], metrics: ['publishRate', 'drainRate'] },
];

const rateOf = (record, metric = 'publishRate') => record.metrics?.[metric] ?? null;

async function single(dir) {
  const port = await freePort();
  const p = start([process.execPath, ...NODE_FLAGS, ...profArgs('single'), MAIN, 'start', '--host', '127.0.0.1', '--port', String(port), '--data-dir', join(dir, 'single'), '--log-level', 'warn', '--management-port', '0', '--metrics-port', '0'], join(dir, 'single.log'));
  p.profiled = true;
  await waitForPort(port, 60_000);
  return { url: `amqp://guest:guest@127.0.0.1:${port}`, cpu: () => [cpuSeconds(p)], cpuParts: () => [cpuParts(p)], threads: () => [['single', threadCpu(p)]], stop: () => stop(p) };
}

async function cluster(dir) {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const etcd = start(
    ['etcd', '--name', 'b1', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', `http://127.0.0.1:${clientPort}`, '--advertise-client-urls', `http://127.0.0.1:${clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-cluster', `b1=http://127.0.0.1:${peerPort}`, '--log-level', 'error'],
    join(dir, 'etcd.log'),
  );
  const endpoints = [`127.0.0.1:${clientPort}`];
  const nodes = [];
  for (const id of ['n1', 'n2', 'n3']) {
    const port = await freePort();
    const cport = await freePort();
    const p = start(
      [process.execPath, ...NODE_FLAGS, ...profArgs(`cluster-${id}`), MAIN, 'start', '--host', '127.0.0.1', '--port', String(port), '--data-dir', join(dir, id), '--log-level', 'warn', '--management-port', '0', '--metrics-port', '0',
        '--cluster-etcd', endpoints[0], '--cluster-port', String(cport), '--node-id', id, '--cluster-name', 'bench'],
      join(dir, `${id}.log`),
    );
    p.profiled = true;
    nodes.push({ id, port, p });
  }
  const until = Date.now() + 60_000;
  let status = null;
  while (Date.now() < until) {
    status = await readClusterStatus(endpoints, 'bench').catch(() => null);
    if (status?.leader && status.isr.length === 3 && status.nodes.find((n) => n.id === status.leader)?.role === 'leader') break;
    await sleep(200);
  }
  if (!status || status.isr.length !== 3) throw new Error(`cluster not ready: ${JSON.stringify(status)}`);
  const leader = nodes.find((n) => n.id === status.leader);
  const follower = nodes.find((n) => n.id !== status.leader);
  return {
    url: `amqp://guest:guest@127.0.0.1:${leader.port}`,
    followerUrl: `amqp://guest:guest@127.0.0.1:${follower.port}`,
    cpu: () => nodes.map((n) => cpuSeconds(n.p)),
    cpuParts: () => [leader, ...nodes.filter((n) => n !== leader)].map((n) => cpuParts(n.p)),
    threads: () => [leader, ...nodes.filter((n) => n !== leader)].map((n) => [n === leader ? `${n.id} (leader)` : n.id, threadCpu(n.p)]),
    stop: async () => {
      for (const n of nodes) await stop(n.p);
      await stop(etcd);
    },
  };
}

const results = [];
const chosen = values.scenario ? SCENARIOS.filter((s) => s.name === values.scenario) : SCENARIOS;
if (chosen.length === 0) throw new Error(`unknown --scenario ${values.scenario}`);
for (let r = 0; r < Number(values.repeat); r++) {
  for (const s of chosen) {
    for (const kind of ['single', 'cluster']) {
      profRun++;
      const dir = mkdtempSync(join(tmpdir(), 'warren-bench-cluster-'));
      const target = kind === 'single' ? await single(dir) : await cluster(dir);
      try {
        const cpuBefore = target.cpu();
        const partsBefore = target.cpuParts?.() ?? [];
        const threadsBefore = values.threads ? target.threads() : [];
        const record = perf(s.name, target.url, s.args());
        // CPU seconds the broker node(s) used during the scenario, all nodes together
        const cpu = +target.cpu().reduce((a, c, i) => a + (c ?? 0) - (cpuBefore[i] ?? 0), 0).toFixed(2);
        // and per node (leader first), user + system
        const perNode = (target.cpuParts?.() ?? [])
          .map((c, i) => (c === null || partsBefore[i] == null ? '?' : `${(c[0] - partsBefore[i][0]).toFixed(1)}+${(c[1] - partsBefore[i][1]).toFixed(1)}`))
          .join(', ');
        results.push({ scenario: s.name, kind, rate: rateOf(record), ok: record.ok, cpu, record });
        log(`${s.name} ${kind}: ${Math.round(rateOf(record))} msg/s, broker CPU ${cpu} s${perNode === '' ? '' : ` (per node, user+system: ${perNode})`}, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
        if (values.threads) {
          target.threads().forEach(([name, now], i) => {
            const before = threadsBefore[i]?.[1] ?? {};
            const parts = Object.entries(now)
              .map(([t, c]) => [t, c - (before[t] ?? 0)])
              .filter(([, c]) => c >= 0.05)
              .sort((a, b) => b[1] - a[1])
              .map(([t, c]) => `${t} ${c.toFixed(2)}`);
            log(`  ${name} threads (CPU s): ${parts.join(', ')}`);
          });
        }
        if (kind === 'cluster' && s.name === 'confirm') {
          const viaFollower = perf(s.name, target.followerUrl, s.args());
          results.push({ scenario: s.name, kind: 'cluster-via-follower', rate: rateOf(viaFollower), ok: viaFollower.ok, record: viaFollower });
          log(`${s.name} cluster via follower: ${Math.round(rateOf(viaFollower))} msg/s`);
        }
      } finally {
        await target.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const summary = [];
for (const s of chosen) {
  for (const metric of s.metrics) {
    const singleRate = median(results.filter((x) => x.scenario === s.name && x.kind === 'single').map((x) => rateOf(x.record, metric)));
    for (const kind of ['cluster', 'cluster-via-follower']) {
      const rates = results.filter((x) => x.scenario === s.name && x.kind === kind).map((x) => rateOf(x.record, metric));
      if (rates.length === 0) continue;
      const rate = median(rates);
      summary.push({ scenario: s.name, metric, kind, single: Math.round(singleRate), replicated: Math.round(rate), ratio: +(rate / singleRate).toFixed(2) });
    }
  }
}
summary.sort((a, b) => a.ratio - b.ratio); // the worst ratio first
if (!values.json) {
  process.stdout.write(`\n| scenario | figure | path | single node msg/s | 3-node cluster msg/s | ratio |\n| --- | --- | --- | --- | --- | --- |\n`);
  for (const x of summary) process.stdout.write(`| ${x.scenario} | ${x.metric} | ${x.kind} | ${x.single} | ${x.replicated} | ${x.ratio}× |\n`);
}
process.stdout.write(`${JSON.stringify({ size: Number(values.size), repeat: Number(values.repeat), summary, ok: results.every((x) => x.ok) })}\n`);
