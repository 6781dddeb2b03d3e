import { readFileSync } from 'node:fs';
const j = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const ev = readFileSync(process.argv[3], 'utf8').trim().split('\n').map((l) => { const [k, s, ms, x] = l.split(' '); return { k, s: +s, ms: +ms, e: +s + +ms, x }; });
const b = j.phases.bystander; const t0 = b.t0Epoch; const d0 = t0 + b.deleteAtMs;
const reads = ev.filter((e) => e.k === 'read');
console.log('deletion: first read', (reads[0].s - d0).toFixed(0), 'ms after delete; last read', (reads.at(-1).e - d0).toFixed(0), 'ms; rows', reads.reduce((a, r) => a + +r.x, 0));
const thr = +(process.argv[4] ?? 6);
const win = (a, b2) => ev.filter((e) => e.e > a && e.s < b2);
for (const phase of ['baseline', 'during']) {
  const sm = b.samples.filter(([t]) => (phase === 'baseline' ? t < d0 : t >= d0));
  const long = sm.filter(([, ms]) => ms >= thr);
  console.log(`\n${phase}: ${sm.length} samples, ${long.length} >= ${thr} ms`);
  for (const [t, ms] of long) {
    const w = win(t, t + ms);
    const gc = w.filter((e) => e.k === 'gc').map((e) => `gc${e.x}:${e.ms.toFixed(1)}`);
    const cs = w.filter((e) => e.k === 'commitS').map((e) => `S${e.x}:${e.ms.toFixed(1)}`);
    const cu = w.filter((e) => e.k === 'commitU').length;
    const as = w.filter((e) => e.k === 'aside').map((e) => `a:${e.ms.toFixed(1)}`);
    const rd = w.filter((e) => e.k === 'read').map((e) => `r:${e.ms.toFixed(1)}`);
    console.log(((t - d0) / 1000).toFixed(2).padStart(7), String(ms).padStart(5), gc.join(' '), '|', cs.join(' '), cu ? `U${cu}` : '', '|', as.join(' '), '|', rd.join(' '));
  }
}
// gc summary per phase
for (const [name, a, z] of [['baseline', t0, d0], ['during', d0, reads.at(-1).e]]) {
  const g = ev.filter((e) => e.k === 'gc' && e.s >= a && e.s < z); const ms = g.map((e) => e.ms).sort((x, y) => x - y);
  const rate = g.length / ((z - a) / 1000);
  console.log(name, 'gc', g.length, `(${rate.toFixed(1)}/s)`, 'median', ms[ms.length >> 1]?.toFixed(1), 'max', ms.at(-1)?.toFixed(1), 'kinds', JSON.stringify(g.reduce((o, e) => (o[e.x] = (o[e.x] ?? 0) + 1, o), {})));
  const c = ev.filter((e) => e.k === 'commitS' && e.s >= a && e.s < z).map((e) => e.ms).sort((x, y) => x - y);
  console.log(name, 'synced commits', c.length, 'p50', c[c.length >> 1]?.toFixed(1), 'p99', c[Math.floor(c.length * 0.99)]?.toFixed(1), 'max', c.at(-1)?.toFixed(1));
}
