import { EventEmitter } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/config.js';
import { USAGE } from '../../src/cli/parse-args.js';
import { runCli, SHUTDOWN_REASON, type CliBroker, type CliIo, type CliStartBroker } from '../../src/cli/run-cli.js';

interface Harness {
  readonly io: CliIo;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly logs: Array<Record<string, unknown>>;
  readonly signals: EventEmitter;
  readonly exits: number[];
  /** Resolves with the first exit code. */
  readonly exited: Promise<number>;
}

function harness(startBroker: CliStartBroker): Harness {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const exits: number[] = [];
  const signals = new EventEmitter();
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  const io: CliIo = {
    stdout: { write: (s: string) => stdout.push(s) },
    stderr: { write: (s: string) => stderr.push(s) },
    logDestination: { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
    startBroker,
    signals,
    exit: (code) => {
      exits.push(code);
      resolveExit(code);
    },
    version: '9.8.7',
  };
  return { io, stdout, stderr, logs, signals, exits, exited };
}

function fakeBroker(close: (reason?: string) => Promise<void> = async () => {}): CliBroker & { close: typeof close } {
  return { url: 'amqp://guest:guest@127.0.0.1:40123', host: '127.0.0.1', port: 40123, close: vi.fn(close) };
}

const neverStart: CliStartBroker = () => Promise.reject(new Error('startBroker must not be called'));

describe('runCli', () => {
  it('--help prints usage and exits 0', async () => {
    const h = harness(neverStart);
    await runCli(['--help'], {}, h.io);
    expect(h.stdout.join('')).toBe(USAGE);
    expect(h.exits).toEqual([0]);
  });

  it('--version prints the package version and exits 0', async () => {
    const h = harness(neverStart);
    await runCli(['--version'], {}, h.io);
    expect(h.stdout).toEqual(['9.8.7\n']);
    expect(h.exits).toEqual([0]);
  });

  it('a bad value prints one line on stderr and exits 2 without starting', async () => {
    const start = vi.fn(neverStart);
    const h = harness(start);
    await runCli(['start', '--port', '99999'], {}, h.io);
    expect(h.stderr).toEqual(['warren: invalid --port "99999": expected an integer from 0 to 65535\n']);
    expect(h.exits).toEqual([2]);
    expect(start).not.toHaveBeenCalled();
  });

  it('start passes the resolved config and a logger, then logs one "Warren listening" info line without credentials', async () => {
    const broker = fakeBroker();
    const start = vi.fn<CliStartBroker>(async () => broker);
    const h = harness(start);
    await runCli(['start', '--port', '0', '--host', '127.0.0.1'], { WARREN_DATA_DIR: '/tmp/w' }, h.io);

    expect(start).toHaveBeenCalledTimes(1);
    const options = start.mock.calls[0]![0];
    expect(options).toMatchObject({ ...DEFAULT_CONFIG, host: '127.0.0.1', port: 0, dataDir: '/tmp/w' });
    expect(typeof options.logger.info).toBe('function');

    const info = h.logs.filter((l) => l.level === 30);
    expect(info).toHaveLength(1);
    expect(info[0]).toMatchObject({
      name: 'warren', msg: 'Warren listening', url: 'amqp://127.0.0.1:40123', port: 40123, version: '9.8.7',
    });
    expect(h.exits).toEqual([]);
  });

  it.each(['SIGINT', 'SIGTERM'])('%s closes the broker with "broker shutdown" and exits 0', async (signal) => {
    const broker = fakeBroker();
    const h = harness(async () => broker);
    await runCli(['start'], {}, h.io);
    h.signals.emit(signal);
    expect(await h.exited).toBe(0);
    expect(broker.close).toHaveBeenCalledWith(SHUTDOWN_REASON);
    expect(h.logs.map((l) => l.msg)).toEqual(['Warren listening', 'Warren shutting down', 'Warren stopped']);
  });

  it('a second signal while closing exits 130 at once', async () => {
    const broker = fakeBroker(() => new Promise<void>(() => {}));
    const h = harness(async () => broker);
    await runCli(['start'], {}, h.io);
    h.signals.emit('SIGTERM');
    h.signals.emit('SIGINT');
    expect(await h.exited).toBe(130);
    expect(broker.close).toHaveBeenCalledTimes(1);
  });

  it('a signal during startup closes the broker as soon as it is up', async () => {
    const broker = fakeBroker();
    let finishStart!: (b: CliBroker) => void;
    const h = harness(() => new Promise<CliBroker>((resolve) => (finishStart = resolve)));
    const running = runCli(['start'], {}, h.io);
    h.signals.emit('SIGTERM');
    expect(broker.close).not.toHaveBeenCalled();
    finishStart(broker);
    await running;
    expect(await h.exited).toBe(0);
    expect(broker.close).toHaveBeenCalledWith(SHUTDOWN_REASON);
  });

  it('a close failure is logged and exits 1', async () => {
    const h = harness(async () => fakeBroker(() => Promise.reject(new Error('store would not close'))));
    await runCli(['start'], {}, h.io);
    h.signals.emit('SIGTERM');
    expect(await h.exited).toBe(1);
    expect(h.logs.at(-1)).toMatchObject({ level: 50, msg: 'Warren shutdown failed: store would not close' });
  });

  it('a shutdown that can never finish (the event loop ran dry while waiting) is logged and exits 1, not 0', async () => {
    const h = harness(async () => fakeBroker(() => new Promise<void>(() => {})));
    await runCli(['start'], {}, h.io);
    h.signals.emit('SIGTERM');
    h.signals.emit('beforeExit');
    expect(await h.exited).toBe(1);
    expect(h.logs.at(-1)).toMatchObject({ level: 50, msg: expect.stringMatching(/^Warren shutdown did not complete/) });
  });

  it('the event loop running dry before any shutdown is not a failure', async () => {
    const h = harness(async () => fakeBroker());
    await runCli(['start'], {}, h.io);
    h.signals.emit('beforeExit');
    expect(h.exits).toEqual([]);
  });

  it('a close failure still reaches stderr when logging is silenced', async () => {
    const h = harness(async () => fakeBroker(() => Promise.reject(new Error('store would not close'))));
    await runCli(['start', '--log-level', 'silent'], {}, h.io);
    h.signals.emit('SIGTERM');
    expect(await h.exited).toBe(1);
    expect(h.stderr).toEqual(['warren: shutdown failed: store would not close\n']);
  });

  it('a startup failure is logged clearly and exits 1', async () => {
    const err = Object.assign(new Error('listen EADDRINUSE: address already in use 0.0.0.0:5672'), { code: 'EADDRINUSE' });
    const h = harness(() => Promise.reject(err));
    await runCli(['start'], {}, h.io);
    expect(h.exits).toEqual([1]);
    expect(h.logs).toHaveLength(1);
    expect(h.logs[0]).toMatchObject({
      level: 50,
      msg: 'Warren failed to start: listen EADDRINUSE: address already in use 0.0.0.0:5672',
      err: { code: 'EADDRINUSE' },
    });
    expect(h.stderr).toEqual([]);
  });

  it('a startup failure still reaches stderr when logging is silenced', async () => {
    const h = harness(() => Promise.reject(new Error('unsupported store format 99')));
    await runCli(['start', '--log-level', 'silent'], {}, h.io);
    expect(h.exits).toEqual([1]);
    expect(h.logs).toEqual([]);
    expect(h.stderr).toEqual(['warren: failed to start: unsupported store format 99\n']);
  });

  it('never logs the default user password', async () => {
    const h = harness(async () => fakeBroker());
    await runCli(['start', '--log-level', 'debug', '--default-user', 'admin', '--default-pass', 'hunter2'], {}, h.io);
    const text = JSON.stringify(h.logs);
    expect(text).toContain('admin');
    expect(text).not.toContain('hunter2');
  });
});

describe('runCli: cluster status', () => {
  const status = {
    leader: 'n1',
    term: 42,
    isr: ['n1', 'n2'],
    nodes: [
      { id: 'n1', amqp: '10.0.0.1:5672', cluster: '10.0.0.1:5679', role: 'leader' },
      { id: 'n2', amqp: '10.0.0.2:5672', cluster: '10.0.0.2:5679', role: 'follower' },
    ],
  };

  it('--json prints leader, ISR and nodes as one JSON line', async () => {
    const h = harness(neverStart);
    const seen: unknown[] = [];
    const io = { ...h.io, clusterStatus: async (etcd: readonly string[], name: string) => (seen.push([etcd, name]), status) };
    await runCli(['cluster', 'status', '--cluster-etcd', '127.0.0.1:2379', '--json'], {}, io);
    expect(seen).toEqual([[['127.0.0.1:2379'], 'warren']]);
    expect(JSON.parse(h.stdout.join(''))).toEqual({
      leader: 'n1',
      term: 42,
      isr: ['n1', 'n2'],
      nodes: [
        { id: 'n1', amqp: '10.0.0.1:5672', role: 'leader' },
        { id: 'n2', amqp: '10.0.0.2:5672', role: 'follower' },
      ],
    });
    expect(h.exits).toEqual([0]);
  });

  it('prints a table without --json, and exits 1 when etcd cannot be read', async () => {
    const h = harness(neverStart);
    await runCli(['cluster', 'status', '--cluster-etcd', 'e:2379'], {}, { ...h.io, clusterStatus: async () => status });
    expect(h.stdout.join('')).toMatch(/leader: n1 \(term 42\)\nisr: {4}n1, n2\nnodes:\n {2}n1 .*10\.0\.0\.1:5672 .*leader\n/);
    const bad = harness(neverStart);
    await runCli(['cluster', 'status', '--cluster-etcd', 'e:2379'], {}, { ...bad.io, clusterStatus: () => Promise.reject(new Error('deadline exceeded')) });
    expect(bad.stderr).toEqual(['warren: cannot read the cluster from etcd: deadline exceeded\n']);
    expect(bad.exits).toEqual([1]);
  });
});
