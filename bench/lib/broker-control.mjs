// The broker under test, as far as the generator can control it:
//  - WarrenBroker: a Warren child process this runner started (fresh temp data dir, free
//    port); restarted on the same data dir after SIGKILL (crash recovery, the default) or
//    SIGTERM (clean shutdown, comparable with RabbitMQ's stop_app/start_app).
//  - RabbitMqBroker: the local RabbitMQ; pid of beam.smp for /proc stats; "restart" is
//    `rabbitmqctl stop_app` + `start_app` (the Erlang VM stays up: a clean application
//    restart, not a crash).
//  - ExternalBroker: just a url (and maybe a pid); no restart.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'amqplib';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WARREN_MAIN = join(REPO_ROOT, 'dist', 'cli', 'main.js');
/** the V8 flags `npm start` and the `warren` executable run the broker with (src/cli/node-flags.ts) */
export async function brokerNodeFlags() {
  return (await import(join(REPO_ROOT, 'dist', 'cli', 'node-flags.js'))).BROKER_NODE_FLAGS;
}

/** A free TCP port on the loopback interface. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until an AMQP connection is accepted; returns it (caller closes). */
export async function waitForConnection(url, timeoutMs, intervalMs = 10) {
  const deadline = performance.now() + timeoutMs;
  let lastError = null;
  while (performance.now() < deadline) {
    try {
      const connection = await connect(url, { noDelay: true });
      connection.on('error', () => {});
      return connection;
    } catch (err) {
      lastError = err;
      await sleep(intervalMs);
    }
  }
  throw new Error(`no AMQP connection to ${redactUrl(url)} within ${timeoutMs} ms: ${lastError?.message}`);
}

/** Polls queue.declare passive until the queue reports `count` ready messages. */
export async function waitForQueueCount(connection, queue, count, timeoutMs, intervalMs = 20) {
  const deadline = performance.now() + timeoutMs;
  let last = -1;
  while (performance.now() < deadline) {
    const ch = await connection.createChannel();
    ch.on('error', () => {});
    try {
      const ok = await ch.checkQueue(queue);
      last = ok.messageCount;
      if (last >= count) return last;
    } catch (err) {
      // the queue may not be recovered yet: the channel is closed with 404, try again
      last = -1;
      void err;
      await sleep(intervalMs);
      continue;
    }
    await ch.close().catch(() => {});
    await sleep(intervalMs);
  }
  throw new Error(`queue ${queue} reported ${last} messages, expected ${count}, within ${timeoutMs} ms`);
}

export function redactUrl(url) {
  return url.replace(/\/\/[^@/]*@/, '//');
}

export class ExternalBroker {
  constructor(url, pid = null) {
    this.kind = 'external';
    this.url = url;
    this.pid = pid;
    this.canRestart = false;
    this.restartNote = 'restart skipped: the runner does not manage this broker (use --manage warren|rabbitmq)';
  }
  async stop() {}
}

export class WarrenBroker {
  constructor(dataDir, port, ownsDataDir) {
    this.kind = 'warren';
    this.dataDir = dataDir;
    this.port = port;
    this.ownsDataDir = ownsDataDir;
    this.url = `amqp://guest:guest@127.0.0.1:${port}`;
    this.child = null;
    this.pid = null;
    this.canRestart = true;
    this.restartNote = 'kill -9 of the Warren process, then a new process on the same data dir (crash recovery)';
    this.stderr = '';
  }

  /** Starts Warren from dist/ on a free port with a fresh temp data dir (unless one is given). */
  /**
   * @param {object} [o]
   * @param {string[]} [o.nodeArgs] extra node flags for the broker (e.g. --trace-gc, --heapsnapshot-signal=SIGUSR2)
   * @param {string|null} [o.logFile] append Warren's stdout (its log, and --trace-gc output) here; default: our stderr
   * @param {string[]} [o.args] extra `warren start` options (e.g. --queue-memory-budget 0.25); none = Warren's defaults
   */
  static async start({ dataDir = null, logLevel = 'warn', restartSignal = 'SIGKILL', nodeArgs = [], logFile = null, args = [] } = {}) {
    if (!existsSync(WARREN_MAIN)) throw new Error(`${WARREN_MAIN} missing: run \`npm run build\` first`);
    const own = dataDir === null;
    const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'warren-bench-'));
    const broker = new WarrenBroker(dir, await freePort(), own);
    broker.logLevel = logLevel;
    broker.restartSignal = restartSignal;
    broker.nodeArgs = [...(await brokerNodeFlags()), ...nodeArgs];
    broker.logFile = logFile;
    broker.args = args;
    if (restartSignal === 'SIGTERM') broker.restartNote = 'SIGTERM (clean shutdown) of the Warren process, then a new process on the same data dir; timed from the new spawn';
    await broker.spawn();
    await broker.ready(30_000);
    return broker;
  }

  spawn() {
    // Warren's stdout never goes to ours: perf.mjs's stdout is the table and the JSON line.
    const out = this.logFile === null ? 2 : openSync(this.logFile, 'a');
    const child = spawn(
      process.execPath,
      [...this.nodeArgs, WARREN_MAIN, 'start', '--host', '127.0.0.1', '--port', String(this.port), '--data-dir', this.dataDir, '--log-level', this.logLevel,
        // RabbitMQ holds 15672/15692 on the bench machine; the stats tick still runs as by default
        '--management-port', '0', '--metrics-port', '0', ...this.args],
      { stdio: ['ignore', out, 'pipe'] },
    );
    if (out !== 2) closeSync(out);
    this.stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
      process.stderr.write(chunk);
    });
    this.child = child;
    this.pid = child.pid;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  async ready(timeoutMs) {
    const connection = await Promise.race([
      waitForConnection(this.url, timeoutMs),
      this.exited.then(({ code, signal }) => {
        throw new Error(`Warren exited (code ${code}, signal ${signal}) before accepting connections: ${this.stderr}`);
      }),
    ]);
    await connection.close();
  }

  /**
   * kill -9 (or SIGTERM), start again on the same data dir; resolves with ms from spawn
   * until a connection is accepted and until `queue` reports `count` messages.
   */
  async restart(queue, count, timeoutMs) {
    const s0 = performance.now();
    this.child.kill(this.restartSignal);
    await this.exited;
    const stopMs = performance.now() - s0;
    const t0 = performance.now();
    this.spawn();
    const connection = await waitForConnection(this.url, timeoutMs);
    const acceptMs = performance.now() - t0;
    const reported = await waitForQueueCount(connection, queue, count, timeoutMs);
    const readyMs = performance.now() - t0;
    await connection.close();
    return { acceptMs, readyMs, reported, stopMs };
  }

  async stop() {
    if (this.child !== null && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

function run(cmd, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: Math.ceil(timeoutMs), encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

export class RabbitMqBroker {
  constructor(url) {
    this.kind = 'rabbitmq';
    this.url = url;
    this.pid = RabbitMqBroker.findPid();
    this.canRestart = true;
    this.restartNote = 'rabbitmqctl stop_app, then start_app (clean application restart; the Erlang VM stays up); timed from start_app';
  }

  /**
   * The beam.smp process of the local node: the one booting the `rabbit` application
   * (rabbitmqctl, which others may run meanwhile, is a beam.smp too).
   */
  static findPid() {
    let pids;
    try {
      pids = execFileSync('pidof', ['beam.smp'], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return null;
    }
    for (const pid of pids) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        if (cmd.includes('rabbit') && cmd.includes('boot')) return pid;
      } catch {
        // gone
      }
    }
    return pids[0] ?? null;
  }

  async restart(queue, count, timeoutMs) {
    const s0 = performance.now();
    await run('rabbitmqctl', ['stop_app'], timeoutMs);
    const stopMs = performance.now() - s0;
    const t0 = performance.now();
    const starting = run('rabbitmqctl', ['start_app'], timeoutMs);
    starting.catch(() => {});
    const connection = await waitForConnection(this.url, timeoutMs, 20);
    const acceptMs = performance.now() - t0;
    const reported = await waitForQueueCount(connection, queue, count, timeoutMs);
    const readyMs = performance.now() - t0;
    await connection.close();
    await starting;
    return { acceptMs, readyMs, reported, stopMs };
  }

  async stop() {}
}
