// Runs one scenario against one broker and builds the result record (the JSON line).
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { cpus, hostname, loadavg, totalmem } from 'node:os';
import { ExternalBroker, RabbitMqBroker, WARREN_MAIN, WarrenBroker, redactUrl } from './broker-control.mjs';
import { resolveOptions } from './options.mjs';
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

/** Starts or attaches to the broker named by o.manage. */
export async function openBroker(o) {
  if (o.manage === 'warren') {
    const broker = await WarrenBroker.start({ restartSignal: o.restartSignal, nodeArgs: o.warrenNodeArgs, logFile: o.warrenLog });
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
    broker: { kind: b.kind, url: redactUrl(o.url), pid: b.pid, ...(b.kind === 'warren' ? warrenBuild() : {}) },
    machine: machineNote(),
    options: { ...o, url: redactUrl(o.url) },
    ok: false,
  };
  try {
    const result = await scenario.run(o, b, log);
    Object.assign(record, result);
    record.ok = result.verification.ok === true;
  } catch (err) {
    record.error = err instanceof Error ? err.message : String(err);
    if (err?.partial) Object.assign(record, err.partial);
  } finally {
    record.broker.pid = b.pid; // a restarted Warren is a new process
    if (ownBroker) await b.stop();
  }
  return record;
}
