// Command-line options shared by perf.mjs and run-compare.mjs. Values given on the
// command line win over the scenario's defaults, which win over GLOBAL_DEFAULTS.
import { parseArgs } from 'node:util';
import { HEADER_SIZE, MAX_BODY_SIZE } from './payload.mjs';

export const GLOBAL_DEFAULTS = {
  url: 'amqp://guest:guest@127.0.0.1:5672',
  size: 16,
  count: null,
  duration: 10,
  warmup: 0,
  producers: 1,
  consumers: 1,
  confirm: 0,
  prefetch: 100,
  ackEvery: 1,
  noAck: false,
  persistent: false,
  brokerPid: null,
  manage: 'none',
  restart: true,
  restartSignal: 'SIGKILL',
  warrenNodeArgs: [],
  warrenLog: null,
  settle: 2,
  timeout: 900,
  slices: 10,
  rate: 0,
  maxLag: 0,
  catchUp: 120,
  stall: 30,
  drainAfter: false,
  ackRate: 0,
  warrenArgs: [],
  client: 'raw',
  connections: 1000,
  calls: null,
  json: false,
};

/** parseArgs configuration: every flag is a string or boolean, converted below. */
export const PERF_FLAGS = {
  url: { type: 'string' },
  size: { type: 'string' },
  count: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  producers: { type: 'string' },
  consumers: { type: 'string' },
  confirm: { type: 'string' },
  prefetch: { type: 'string' },
  'ack-every': { type: 'string' },
  'no-ack': { type: 'boolean' },
  persistent: { type: 'boolean' },
  transient: { type: 'boolean' },
  'broker-pid': { type: 'string' },
  manage: { type: 'string' },
  'no-restart': { type: 'boolean' },
  'restart-signal': { type: 'string' },
  'warren-node-args': { type: 'string' },
  'warren-log': { type: 'string' },
  settle: { type: 'string' },
  timeout: { type: 'string' },
  slices: { type: 'string' },
  rate: { type: 'string' },
  'max-lag': { type: 'string' },
  'catch-up': { type: 'string' },
  stall: { type: 'string' },
  'ack-rate': { type: 'string' },
  'probe-interval': { type: 'string' },
  'warren-args': { type: 'string' },
  client: { type: 'string' },
  connections: { type: 'string' },
  calls: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

function int(name, raw, min, max) {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}, got ${raw}`);
  return n;
}

function num(name, raw, min) {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${raw}`);
  return n;
}

/** Converts parsed flag values into the options a scenario sees (only flags actually given). */
export function explicitOptions(values) {
  const o = {};
  if (values.url !== undefined) o.url = values.url;
  if (values.size !== undefined) o.size = int('size', values.size, 1, MAX_BODY_SIZE);
  if (values.count !== undefined) o.count = int('count', values.count, 1, 0xffffffff);
  if (values.duration !== undefined) o.duration = num('duration', values.duration, 0.1);
  if (values.warmup !== undefined) o.warmup = num('warmup', values.warmup, 0);
  if (values.producers !== undefined) o.producers = int('producers', values.producers, 0, 1000);
  if (values.consumers !== undefined) o.consumers = int('consumers', values.consumers, 0, 1000);
  if (values.confirm !== undefined) o.confirm = int('confirm', values.confirm, 0, 1_000_000);
  if (values.prefetch !== undefined) o.prefetch = int('prefetch', values.prefetch, 0, 65535);
  if (values['ack-every'] !== undefined) o.ackEvery = int('ack-every', values['ack-every'], 1, 65535);
  if (values['no-ack']) o.noAck = true;
  if (values.persistent) o.persistent = true;
  if (values.transient) o.persistent = false;
  if (values['broker-pid'] !== undefined) o.brokerPid = int('broker-pid', values['broker-pid'], 1, 2 ** 31);
  if (values.manage !== undefined) {
    if (!['none', 'warren', 'rabbitmq'].includes(values.manage)) throw new Error(`--manage must be none, warren or rabbitmq`);
    o.manage = values.manage;
  }
  if (values['no-restart']) o.restart = false;
  if (values['restart-signal'] !== undefined) {
    const sig = values['restart-signal'].toUpperCase().replace(/^(SIG)?/, 'SIG');
    if (sig !== 'SIGKILL' && sig !== 'SIGTERM') throw new Error('--restart-signal must be KILL or TERM');
    o.restartSignal = sig;
  }
  if (values.settle !== undefined) o.settle = num('settle', values.settle, 0);
  if (values.timeout !== undefined) o.timeout = num('timeout', values.timeout, 1);
  if (values.slices !== undefined) o.slices = int('slices', values.slices, 1, 1000);
  if (values['warren-node-args'] !== undefined) o.warrenNodeArgs = values['warren-node-args'].split(/\s+/).filter(Boolean);
  if (values['warren-log'] !== undefined) o.warrenLog = values['warren-log'];
  if (values.rate !== undefined) o.rate = num('rate', values.rate, 0);
  if (values['max-lag'] !== undefined) o.maxLag = int('max-lag', values['max-lag'], 0, 1e9);
  if (values.stall !== undefined) o.stall = num('stall', values.stall, 1);
  if (values['catch-up'] !== undefined) o.catchUp = num('catch-up', values['catch-up'], 0);
  if (values['ack-rate'] !== undefined) o.ackRate = num('ack-rate', values['ack-rate'], 0);
  if (values['probe-interval'] !== undefined) o.probeInterval = num('probe-interval', values['probe-interval'], 1);
  if (values['warren-args'] !== undefined) o.warrenArgs = values['warren-args'].split(/\s+/).filter(Boolean);
  if (values.client !== undefined) {
    if (!['raw', 'amqplib'].includes(values.client)) throw new Error('--client must be raw or amqplib');
    o.client = values.client;
  }
  if (values.connections !== undefined) o.connections = int('connections', values.connections, 1, 100_000);
  if (values.calls !== undefined) o.calls = int('calls', values.calls, 1, 100_000_000);
  if (values.json) o.json = true;
  return o;
}

/** Global defaults, then the scenario's, then what the user typed. */
export function resolveOptions(scenario, explicit) {
  const o = { ...GLOBAL_DEFAULTS, ...scenario.defaults, ...explicit };
  if (o.size < HEADER_SIZE) {
    // The body must hold producer id, sequence number and timestamp to be verified.
    o.sizeNote = `--size ${o.size} raised to ${HEADER_SIZE} (the smallest verifiable body)`;
    o.size = HEADER_SIZE;
  }
  if (typeof scenario.adjust === 'function') scenario.adjust(o, explicit);
  return o;
}
