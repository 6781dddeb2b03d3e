import { readFileSync } from 'node:fs';
const [dump, log] = process.argv.slice(2);
const d = JSON.parse(readFileSync(dump, 'utf8')); const D0 = d.origin + d.d0;
for (const l of readFileSync(log, 'utf8').trim().split('\n')) {
  const m = l.match(/^(\d+)\/(\d+)\/(\d+)-(\d+):(\d+):(\d+)\.(\d+) \S+ (.*)$/); if (!m) continue;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + (+m[7]) / 1000; const r = t - D0;
  if (r > -4000 && r < 4000) console.log(r.toFixed(1), m[8].slice(0, 150));
}
