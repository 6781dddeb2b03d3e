import { readFileSync } from 'node:fs';
const [dump, lag] = process.argv.slice(2);
const d = JSON.parse(readFileSync(dump, 'utf8'));
const ep = (t) => d.origin + t;
const D0 = ep(d.d0), D1 = ep(d.d1);
const lines = readFileSync(lag, 'utf8').trim().split('\n').map((l) => { const [k, t, ms, kind] = l.split(' '); return { k, t: +t, ms: +ms, kind }; });
const rel = (t) => (t - D0).toFixed(1);
console.log(`purge/delete at 0, ok at ${(D1 - D0).toFixed(1)} ms`);
const top = d.samples.map(([t, ms]) => ({ t: ep(t), ms })).filter((s) => s.t > D0 - 3000).sort((a, b) => b.ms - a.ms).slice(0, 12);
for (const s of top) {
  const ov = lines.filter((l) => l.t < s.t + s.ms && l.t + l.ms > s.t - 1).map((l) => `${l.k}${l.kind ? '/' + l.kind : ''}@${rel(l.t)}:${l.ms}`);
  console.log(`wait ${s.ms.toFixed(1)} ms sent at ${rel(s.t)} ${s.t < D0 ? '(baseline)' : ''} overlaps: ${ov.join(' ')}`);
}
console.log('broker events in [-3000, +3000] >= 3ms:');
for (const l of lines.filter((l) => l.t > D0 - 3000 && l.t < D0 + 3000 && l.ms >= 3)) console.log(`  ${l.k} ${l.kind ?? ''} at ${rel(l.t)} ${l.ms}`);
