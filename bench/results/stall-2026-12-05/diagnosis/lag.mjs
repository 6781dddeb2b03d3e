// preload: logs GC pauses >= 1 ms and event-loop gaps >= 3 ms with epoch ms
import { PerformanceObserver, performance, constants } from 'node:perf_hooks';
import { appendFileSync } from 'node:fs';
const file = process.env.LAG_FILE ?? `/tmp/stall/lag-${process.pid}.log`;
const origin = performance.timeOrigin;
const kinds = { [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major', [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incr', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.duration >= 1) appendFileSync(file, `gc ${(origin + e.startTime).toFixed(1)} ${e.duration.toFixed(2)} ${kinds[e.detail?.kind] ?? e.detail?.kind}\n`);
  }
}).observe({ entryTypes: ['gc'] });
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  if (now - last >= 2.5) appendFileSync(file, `lag ${(origin + last).toFixed(1)} ${(now - last).toFixed(2)} mono${(Number(process.hrtime.bigint() / 1000n) - (now - last) * 1000).toFixed(0)}\n`);
  last = now;
}, 1).unref();
// copies LevelDB's LOG (compaction timestamps) out of the data dir, which the bench removes
import { copyFileSync, existsSync } from 'node:fs';
const argv = process.argv; const di = argv.indexOf('--data-dir');
if (di > 0) setInterval(() => { const f = `${argv[di + 1]}/LOG`; try { if (existsSync(f)) copyFileSync(f, `${file}.LOG`); } catch {} }, 300).unref();
