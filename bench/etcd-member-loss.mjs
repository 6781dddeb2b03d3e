#!/usr/bin/env node
// Losing one etcd member must cause no Warren failover: does a node's lease deadline survive
// the kill of the etcd raft leader? Starts a 3-member etcd (the harness's settings: heartbeat
// 100 ms, election timeout 1 s) and three EtcdCoordinators (the nodes' coordination, no
// broker), then kills the raft leader N times. Per kill it reports the lowest slack any
// coordinator's lease deadline had left (deadline - now, sampled every 10 ms: below 0 the
// deadline passed: a leader pauses its confirms until etcd renews the lease, no failover
// since the etcd-loss fix, docs/clustering.md) and how long after the kill the first
// keepalive was answered again.
//   npm run build && flock /tmp/bench.lock node bench/etcd-member-loss.mjs [--kills 10] [--json]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from './lib/broker-control.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { EtcdCoordinator, DEFAULT_LEASE_TTL, DEFAULT_KEEPALIVE_MS, DEFAULT_MARGIN_MS } = await import(join(ROOT, 'dist', 'cluster', 'etcd-coordinator.js'));
const { default: pino } = await import('pino');

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '10' },
    'lease-ttl': { type: 'string', default: String(DEFAULT_LEASE_TTL) },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(`node bench/etcd-member-loss.mjs [--kills n] [--lease-ttl s] [--json]   (npm run build first)
  Kills the raft leader of a 3-member etcd n times (default 10) under three nodes' leases and
  counts the kills after which a lease deadline passed (each a pause of a leader's confirms).
`);
  process.exit(0);
}
if (spawnSync('etcd', ['--version']).status !== 0) throw new Error("etcd is not installed ('apt-get install etcd-server')");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(`${s}\n`);
const mono = () => performance.now();

const root = mkdtempSync(join(tmpdir(), 'warren-etcd-loss-'));
const members = [];
for (let i = 1; i <= 3; i++) members.push({ name: `e${i}`, client: await freePort(), peer: await freePort(), proc: null });
const initial = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
function spawnMember(m, state) {
  m.proc = spawn('etcd', [
    '--name', m.name, '--data-dir', join(root, m.name),
    '--listen-client-urls', `http://127.0.0.1:${m.client}`, '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
    '--listen-peer-urls', `http://127.0.0.1:${m.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
    '--initial-cluster', initial, '--initial-cluster-state', state, '--initial-cluster-token', `loss-${process.pid}`,
    '--heartbeat-interval', '100', '--election-timeout', '1000', '--log-level', 'error',
  ], { stdio: 'ignore' });
}
const post = async (m, path, body) => (await fetch(`http://127.0.0.1:${m.client}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(1000) })).json();
async function healthy() {
  for (const until = Date.now() + 30_000; Date.now() < until; await sleep(100)) {
    for (const m of members) {
      if (m.proc === null) continue;
      try {
        await post(m, '/v3/kv/put', { key: Buffer.from('health').toString('base64'), value: '' });
        return;
      } catch {}
    }
  }
  throw new Error('etcd did not become healthy');
}
async function raftLeader() {
  for (const m of members) {
    if (m.proc === null) continue;
    try {
      const s = await post(m, '/v3/maintenance/status', {});
      const list = await post(m, '/v3/cluster/member/list', {});
      return members.find((x) => x.name === list.members.find((y) => y.ID === s.leader)?.name) ?? null;
    } catch {}
  }
  return null;
}

const children = () => members.map((m) => m.proc).filter((p) => p !== null);
process.on('exit', () => {
  for (const p of children()) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});
for (const m of members) spawnMember(m, 'new');
await healthy();

const endpoints = members.map((m) => `127.0.0.1:${m.client}`);
const logger = pino({ level: 'silent' });
const coordinators = [];
for (const id of ['n1', 'n2', 'n3']) {
  const c = new EtcdCoordinator({
    endpoints, clusterName: 'loss', nodeId: id, candidate: { id, amqp: '127.0.0.1:1', cluster: '127.0.0.1:2' },
    leaseTtl: Number(values['lease-ttl']), keepaliveMs: DEFAULT_KEEPALIVE_MS, marginMs: DEFAULT_MARGIN_MS, logger,
  });
  c.expiredAt = null;
  c.on('expired', () => (c.expiredAt ??= mono()));
  await c.start();
  coordinators.push(c);
}

const kills = Number(values.kills);
const trials = [];
for (let i = 0; i < kills; i++) {
  await sleep(1500);
  const victim = (await raftLeader()) ?? members[i % 3];
  for (const c of coordinators) c.expiredAt = null;
  let slack = Infinity;
  const renewedAfter = coordinators.map(() => null);
  const before = coordinators.map((c) => c.leaseDeadline);
  const t0 = mono();
  victim.proc.kill('SIGKILL');
  victim.proc = null;
  const sampler = setInterval(() => {
    const now = mono();
    coordinators.forEach((c, k) => {
      slack = Math.min(slack, c.leaseDeadline - now);
      // a deadline that moved past its value at the kill by more than a keepalive period: a post-kill answer
      if (renewedAfter[k] === null && c.leaseDeadline > before[k] + 2 * DEFAULT_KEEPALIVE_MS) renewedAfter[k] = now - t0;
    });
  }, 10);
  await sleep(6000);
  clearInterval(sampler);
  const expired = coordinators.filter((c) => c.expiredAt !== null).length;
  const trial = { kill: i + 1, member: victim.name, expired, minSlackMs: Math.round(slack), renewedAfterMs: renewedAfter.map((x) => (x === null ? null : Math.round(x))) };
  trials.push(trial);
  log(`kill ${i + 1}/${kills} of ${victim.name} (raft leader): ${expired} lease deadline(s) passed; lowest slack ${trial.minSlackMs} ms; first keepalive answered after ${trial.renewedAfterMs.join(', ')} ms`);
  spawnMember(victim, 'existing');
  await healthy();
}
for (const c of coordinators) await c.close?.().catch(() => {});
const failed = trials.filter((t) => t.expired > 0).length;
const slacks = trials.map((t) => t.minSlackMs).sort((a, b) => a - b);
const summary = { kills, leaseTtl: Number(values['lease-ttl']), killsWithAPassedDeadline: failed, lowestSlackMs: slacks[0], medianSlackMs: slacks[Math.floor(slacks.length / 2)], trials };
if (!values.json) log(`\n${failed} of ${kills} raft-leader kills let a lease deadline pass (each a pause of confirms if that node led); lowest slack ${slacks[0]} ms, median ${summary.medianSlackMs} ms`);
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exit(0);
