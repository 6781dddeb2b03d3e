#!/usr/bin/env node
// Where does the broker allocate? Starts Warren from dist/ in this process, samples every
// allocation (including objects that die young, which --heap-prof leaves out) while
// bench/perf.mjs drives it from a child process, and prints the functions that allocated
// the most bytes (self) and the call paths into them.
//
//   npm run build
//   node bench/alloc-profile.mjs latency --duration 5
//   node bench/alloc-profile.mjs body1k --duration 5 --top 30 --out /tmp/body1k.heapprofile
//
// Any perf.mjs options after the scenario are passed through (not --url / --manage).
import { Session } from 'node:inspector/promises';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const take = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const top = Number(take('--top', '25'));
const out = take('--out', null);
const interval = Number(take('--interval', '512'));
if (args.length === 0 || args[0].startsWith('-')) {
  console.error('usage: node bench/alloc-profile.mjs <scenario> [perf.mjs options] [--top N] [--out file] [--interval bytes]');
  process.exit(2);
}

const { startBroker } = await import(join(here, '..', 'dist', 'index.js'));
const broker = await startBroker({ port: 0, logLevel: 'warn' });

const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
await session.post('HeapProfiler.startSampling', {
  samplingInterval: interval,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});

const child = spawn(process.execPath, [join(here, 'perf.mjs'), ...args, '--url', broker.url, '--json'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let stdout = '';
child.stdout.on('data', (d) => (stdout += d));
const code = await new Promise((resolve) => child.on('exit', resolve));
const { profile } = await session.post('HeapProfiler.stopSampling');
await broker.close();
session.disconnect();

if (out) writeFileSync(out, JSON.stringify(profile));
let delivered = 0;
try {
  const j = JSON.parse(stdout.trim().split('\n').pop());
  delivered = j.verification?.received ?? 0;
  console.log(`perf.mjs exit ${code}, verified ${j.verification?.ok}, ${delivered} deliveries`);
} catch {
  console.log(`perf.mjs exit ${code}; no JSON result`);
}

// Self bytes per function, and total bytes per call path (leaf first, 4 frames).
const self = new Map();
const paths = new Map();
let total = 0;
const name = (cf) => `${cf.functionName || '(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
const walk = (node, stack) => {
  const here = [...stack, name(node.callFrame)];
  const bytes = node.selfSize;
  if (bytes > 0) {
    total += bytes;
    const key = here[here.length - 1];
    self.set(key, (self.get(key) ?? 0) + bytes);
    const path = here.slice(-5).reverse().join(' < ');
    paths.set(path, (paths.get(path) ?? 0) + bytes);
  }
  for (const c of node.children) walk(c, here);
};
walk(profile.head, []);
const per = (b) => (delivered > 0 ? `${(b / delivered).toFixed(0).padStart(6)} B/msg` : '');
console.log(`\nsampled allocation: ${(total / 1048576).toFixed(1)} MiB ${per(total)}\n\nby function (self):`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${(v / 1048576).toFixed(2).padStart(8)} MiB ${per(v)}  ${k}`);
}
console.log('\nby call path (leaf < caller < ...):');
for (const [k, v] of [...paths].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${(v / 1048576).toFixed(2).padStart(8)} MiB ${per(v)}  ${k}`);
}
