import { readFileSync } from 'node:fs';
const q = (s, p) => { const i = (s.length - 1) * p; const lo = Math.floor(i), hi = Math.ceil(i); return +(s[lo] + (s[hi] - s[lo]) * (i - lo)).toFixed(1); };
for (const side of process.argv.slice(2)) {
  const rows = readFileSync(`${side}.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  for (const sc of ['purge-stall', 'delete-stall']) {
    const r = rows.filter((x) => x.scenario === sc && x.broker?.kind === 'warren');
    for (const key of ['stallExcessMs', 'stallMaxMs', 'baselineMaxMs']) {
      const v = r.map((x) => x.metrics?.[key]).filter((x) => x != null);
      const s = [...v].sort((a, b) => a - b);
      console.log(`${side} ${sc} ${key}: n=${v.length} median ${q(s, 0.5)} IQR ${q(s, 0.25)}–${q(s, 0.75)} min–max ${s[0]}–${s[s.length - 1]}`);
    }
    console.log(`   runs stallExcessMs: ${r.map((x) => x.metrics?.stallExcessMs).join(' ')}  all verified: ${r.every((x) => x.ok !== false && x.verification?.ok !== false)}`);
  }
}
