// Broker resource usage from /proc (Linux): resident memory from /proc/PID/status and CPU
// time from /proc/PID/stat, sampled while a phase runs so the peak RSS is seen, not only
// the value at the end.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clockTicks = 0;
function ticksPerSecond() {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** One reading, or null when the process is gone or pid is null. */
export function readProc(pid) {
  if (pid == null) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    const hwmKiB = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    // RSS splits into anonymous memory (heap, malloc) and file pages mapped into the
    // process (e.g. LevelDB reads its table files through mmap): only the first is "owned".
    const anonKiB = Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    const fileKiB = Number(/RssFile:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    // Fields after the ")" of the command name: index 0 is field 3 (state), so utime (14) is 11, stime (15) is 12.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
    return { rssMiB: rssKiB / 1024, hwmMiB: hwmKiB / 1024, rssAnonMiB: anonKiB / 1024, rssFileMiB: fileKiB / 1024, cpuSeconds, at: performance.now() };
  } catch {
    return null;
  }
}

/** Samples a process every `intervalMs` between start() and stop(). */
export class ProcSampler {
  constructor(pid, intervalMs = 250) {
    this.pid = pid;
    this.intervalMs = intervalMs;
    this.first = null;
    this.last = null;
    this.rssMaxMiB = 0;
    this.timer = null;
    /** every sample as [performance.now() ms, RSS MiB], to see how memory follows progress */
    this.series = [];
  }

  /** RSS (MiB, rounded) of the last sample taken at or before `at` (performance.now() ms). */
  rssAt(at) {
    let found = null;
    for (const [t, rss] of this.series) {
      if (t > at) break;
      found = rss;
    }
    return found === null ? null : Math.round(found);
  }

  start() {
    this.first = this.sample();
    if (this.pid != null) {
      this.timer = setInterval(() => this.sample(), this.intervalMs);
      this.timer.unref();
    }
    return this;
  }

  sample() {
    const r = readProc(this.pid);
    if (r !== null) {
      this.last = r;
      this.series.push([r.at, r.rssMiB]);
      if (r.rssMiB > this.rssMaxMiB) this.rssMaxMiB = r.rssMiB;
    }
    return r;
  }

  /** Broker usage over the sampled interval; null fields when no pid was given. */
  stop() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const end = this.sample();
    if (this.first === null || end === null) return { rssEndMiB: null, rssMaxMiB: null, rssAnonEndMiB: null, rssFileEndMiB: null, cpuSeconds: null, cpuPercent: null };
    const cpuSeconds = end.cpuSeconds - this.first.cpuSeconds;
    const wallSeconds = (end.at - this.first.at) / 1000;
    return {
      rssEndMiB: round1(end.rssMiB),
      rssMaxMiB: round1(this.rssMaxMiB),
      rssAnonEndMiB: round1(end.rssAnonMiB),
      rssFileEndMiB: round1(end.rssFileMiB),
      cpuSeconds: round1(cpuSeconds),
      cpuPercent: wallSeconds > 0 ? round1((cpuSeconds / wallSeconds) * 100) : null,
    };
  }
}

function round1(x) {
  return Math.round(x * 10) / 10;
}

/**
 * Waits until the process's RSS is stable (changes by less than `toleranceMiB` over
 * `windowMs`), bounded by `maxMs`, and returns that reading. An Erlang VM or a Node heap
 * keeps releasing memory for a while after a burst of work, so a "before" reading taken
 * right after another run would otherwise drift by more than what is being measured.
 */
export async function settledProc(pid, { minMs = 1000, maxMs = 15_000, windowMs = 1000, toleranceMiB = 0.5 } = {}) {
  if (pid == null) return null;
  const start = performance.now();
  const window = [];
  let r = readProc(pid);
  while (r !== null) {
    window.push(r);
    while (window.length > 0 && r.at - window[0].at > windowMs) window.shift();
    const elapsed = performance.now() - start;
    if (elapsed >= minMs && window.length > 1 && r.at - window[0].at >= windowMs * 0.75) {
      const rss = window.map((x) => x.rssMiB);
      if (Math.max(...rss) - Math.min(...rss) < toleranceMiB) return r;
    }
    if (elapsed >= maxMs) return r;
    await new Promise((resolve) => setTimeout(resolve, 100));
    r = readProc(pid);
  }
  return r;
}
