import { readFileSync } from 'node:fs';
const [profFile, lagFile, minMs] = process.argv.slice(2);
const p = JSON.parse(readFileSync(profFile, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map(); for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const times = []; let t = p.startTime; for (const d of p.timeDeltas) { t += d; times.push(t); }
const name = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`;
const lags = readFileSync(lagFile, 'utf8').trim().split('\n').filter((l) => l.startsWith('lag')).map((l) => { const [, , ms, mono] = l.split(' '); return { ms: +ms, mono: +mono.slice(4) }; }).filter((l) => l.ms >= +(minMs ?? 4));
for (const lag of lags) {
  const self = new Map(); const incl = new Map(); let n = 0;
  for (let i = 0; i < times.length; i++) {
    if (times[i] < lag.mono || times[i] > lag.mono + lag.ms * 1000) continue;
    n++; const leaf = byId.get(p.samples[i]);
    self.set(name(leaf), (self.get(name(leaf)) ?? 0) + 1);
    const seen = new Set(); for (let id = leaf.id; id !== undefined; id = parent.get(id)) { const k = name(byId.get(id)); if (!seen.has(k)) { seen.add(k); incl.set(k, (incl.get(k) ?? 0) + 1); } }
  }
  console.log(`lag ${lag.ms} ms: ${n} samples; self: ${[...self].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, v]) => `${k}=${v}`).join(', ')}`);
  console.log(`   incl: ${[...incl].sort((a, b) => b[1] - a[1]).filter(([k]) => !k.startsWith('(root)')).slice(0, 12).map(([k, v]) => `${k}=${v}`).join(' | ')}`);
}
