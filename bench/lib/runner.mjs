// Runs one scenario against one broker and builds the result record (the JSON line).
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { cpus, hostname, loadavg, totalmem } from 'node:os';
import { ExternalBroker, RabbitMqBroker, WARREN_MAIN, WarrenBroker, redactUrl } from './broker-control.mjs';
import { resolveOptions } from './options.mjs';
import { readProc } from './proc-stats.mjs';
import { SCENARIOS } from '../scenarios/index.mjs';

export function machineNote() {
  const c = cpus();
  return { host: hostname(), cpus: c.length, cpuModel: c[0]?.model ?? 'unknown', memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadavg1m: Math.round(loadavg()[0] * 100) / 100 };
}

/**
 * Which Warren was measured: the checkout's HEAD and when dist/ was last built (others may
 * rebuild dist/ between runs, so this is recorded per run).
 */
export function warrenBuild() {
  let gitHead = null;
  try {
    gitHead = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: new URL('../..', import.meta.url), encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  let distBuiltAt = null;
  try {
    distBuiltAt = statSync(WARREN_MAIN).mtime.toISOString();
  } catch {
    // not built
  }
  return { gitHead, distBuiltAt };
}

/** Busy CPU seconds of the whole machine, all cores (/proc/stat), or null off Linux. */
function machineBusySeconds() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / 100;
  } catch {
    return null;
  }
}

/**
 * How busy the machine was with work other than this run: CPU used by every process
 * except the broker under test and this generator (all its threads), in % of one core,
 * between start() and stop(). The machine is shared; a run with much other work is
 * disturbed and worth repeating.
 */
export class OtherLoad {
  constructor(brokerPid) {
    this.brokerPid = brokerPid;
    this.t0 = performance.now();
    this.busy0 = machineBusySeconds();
    this.broker0 = readProc(brokerPid)?.cpuSeconds ?? null;
    this.self0 = readProc(process.pid)?.cpuSeconds ?? null;
  }

  stop() {
    const wall = (performance.now() - this.t0) / 1000;
    const busy = machineBusySeconds();
    const broker = readProc(this.brokerPid)?.cpuSeconds ?? null;
    const self = readProc(process.pid)?.cpuSeconds ?? null;
    if (wall <= 0 || busy === null || this.busy0 === null || self === null || this.self0 === null) return null;
    const brokerUsed = broker !== null && this.broker0 !== null ? broker - this.broker0 : 0;
    const other = busy - this.busy0 - brokerUsed - (self - this.self0);
    return Math.max(0, Math.round((other / wall) * 1000) / 10);
  }
}

/** Starts or attaches to the broker named by o.manage. */
export async function openBroker(o) {
  if (o.manage === 'warren') {
    const broker = await WarrenBroker.start({ restartSignal: o.restartSignal, nodeArgs: o.warrenNodeArgs, logFile: o.warrenLog, args: o.warrenArgs });
    o.url = broker.url;
    return broker;
  }
  if (o.manage === 'rabbitmq') {
    const broker = new RabbitMqBroker(o.url);
    if (o.brokerPid !== null) broker.pid = o.brokerPid;
    return broker;
  }
  return new ExternalBroker(o.url, o.brokerPid);
}

/**
 * Runs `scenarioName` with options `explicit` (as typed) against `broker` (or the one
 * o.manage names, started and stopped here). Never throws for a failed run: the record
 * says ok:false and why.
 */
export async function runScenario(scenarioName, explicit, { broker = null, log = () => {} } = {}) {
  const scenario = SCENARIOS[scenarioName];
  if (scenario === undefined) throw new Error(`unknown scenario ${scenarioName}; one of ${Object.keys(SCENARIOS).join(', ')}`);
  const o = resolveOptions(scenario, explicit);
  const ownBroker = broker === null;
  const b = broker ?? (await openBroker(o));
  if (!ownBroker) o.url = b.url;
  const record = {
    scenario: scenarioName,
    date: new Date().toISOString(),
    broker: { kind: b.kind, url: redactUrl(o.url), pid: b.pid, ...(b.kind === 'warren' ? { ...warrenBuild(), args: b.args ?? [] } : {}) },
    machine: machineNote(),
    options: { ...o, url: redactUrl(o.url) },
    ok: false,
  };
  const otherLoad = new OtherLoad(b.pid);
  const t0 = performance.now();
  try {
    const result = await scenario.run(o, b, log);
    Object.assign(record, result);
    record.ok = result.verification.ok === true;
  } catch (err) {
    record.error = err instanceof Error ? err.message : String(err);
    if (err?.partial) Object.assign(record, err.partial);
  } finally {
    record.seconds = Math.round((performance.now() - t0) / 100) / 10;
    // Other work on the machine during the run (% of one core), and the load average at its end.
    record.machine.otherCpuPercent = otherLoad.stop();
    record.machine.loadavg1mEnd = Math.round(loadavg()[0] * 100) / 100;
    record.broker.pid = b.pid; // a restarted Warren is a new process
    if (ownBroker) await b.stop();
  }
  return record;
}
