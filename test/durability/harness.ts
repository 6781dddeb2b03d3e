// Shared helpers for the durability tests: temp data dirs, an in-process broker, a
// child-process broker (the real CLI, so kill -9 is a real crash), a commit barrier,
// and a frame-capturing TCP proxy for byte-exact property checks.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect, type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { BROKER_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { startBroker } from '../../src/index.js';
import { afterEach } from 'vitest';

/** Child processes and fsyncs are slow on a loaded 2-core machine; vitest's 5 s default is too tight. */
export const TEST_TIMEOUT = 20_000;
/** the child brokers' per-queue memory window: backlogs beyond it are paged */
export const TEST_MEMORY_WINDOW = 1000;

export const CLI_PATH = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export async function tempDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'warren-durability-'));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export interface BrokerHandle {
  readonly url: string;
  readonly port: number;
  /** takes the broker down the way the restart mode says (clean close or SIGKILL) */
  stop(): Promise<void>;
}

export interface RestartMode {
  readonly name: string;
  start(dataDir: string): Promise<BrokerHandle>;
  /**
   * Called on a connection right before stop(), so that what the test did on it counts.
   * A clean close flushes the store itself; before a SIGKILL the test needs proof that
   * earlier writes on this connection are on disk, because declare-ok and basic.ack are
   * not tied to a store commit.
   */
  settle(conn: ChannelModel): Promise<void>;
}

export const cleanRestart: RestartMode = {
  name: 'clean restart (in-process close)',
  async start(dataDir) {
    const broker = await startBroker({ dataDir, port: 0, queueMemoryWindow: TEST_MEMORY_WINDOW });
    return { url: broker.url, port: broker.port, stop: () => broker.close() };
  },
  /**
   * close() flushes the store, but frames still in the socket (a basic.ack has no reply)
   * may be unread when it closes the connection: one round trip proves they were handled.
   */
  async settle(conn) {
    const ch = await conn.createChannel();
    await ch.close();
  },
};

export const killRestart: RestartMode = {
  name: 'kill -9 restart (child process)',
  async start(dataDir) {
    const child = await spawnWarren(dataDir);
    return { url: child.url, port: child.port, stop: () => child.kill9() };
  },
  settle: commitBarrier,
};

export const BARRIER_QUEUE = 'durability.barrier';

/**
 * Publishes one persistent message to a durable queue on a confirm channel of `conn` and
 * waits for its confirm. Frames of one connection are handled in order and the store
 * commits its batches in order, so once this confirm arrives every store write caused by
 * earlier frames on the connection (declares, binds, acks) is committed.
 */
export async function commitBarrier(conn: ChannelModel): Promise<void> {
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(BARRIER_QUEUE, { durable: true });
  ch.sendToQueue(BARRIER_QUEUE, Buffer.from('barrier'), { persistent: true });
  await ch.waitForConfirms();
  await ch.close();
}

export interface WarrenChild {
  readonly process: ChildProcess;
  readonly url: string;
  readonly port: number;
  /** every stdout/stderr line so far */
  readonly output: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** resolves with the first line (already printed or still to come) that contains `text`; rejects if the broker exits first */
  waitForOutput(text: string): Promise<string>;
  kill9(): Promise<void>;
  /** a clean stop (SIGTERM); resolves with the exit code */
  terminate(): Promise<number | null>;
}

export interface WarrenExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string[];
}

/**
 * Brokers this test worker started and that still run. When the worker exits (also when a
 * run is cut short and the worker is told to end) they are killed with it, instead of staying
 * behind as orphans that hold ports, data dirs and CPU.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function launch(
  dataDir: string,
  extraArgs: readonly string[] = [],
): { child: ChildProcess; output: string[]; exited: Promise<WarrenExit>; lines: ReturnType<typeof createInterface>; errLines: ReturnType<typeof createInterface> } {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(
    process.execPath,
    // a small memory window, so that modest backlogs exercise paging to and from the store
    [...BROKER_NODE_FLAGS, CLI_PATH, 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--log-level', 'info', '--queue-memory-window', String(TEST_MEMORY_WINDOW), '--management-port', '0', '--metrics-port', '0', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (l) => output.push(l));
  const errLines = createInterface({ input: child.stderr! });
  errLines.on('line', (l) => output.push(l));
  running.add(child);
  child.once('exit', () => running.delete(child));
  const exited = new Promise<WarrenExit>((resolve) => {
    // 'close' (not 'exit') so every line of output has been read.
    child.on('close', (code, signal) => resolve({ code, signal, output }));
  });
  return { child, output, exited, lines, errLines };
}

/** Starts `warren start` on an ephemeral port; resolves on its "Warren listening" log line. */
export async function spawnWarren(dataDir: string, extraArgs: readonly string[] = []): Promise<WarrenChild> {
  const { child, output, exited, lines, errLines } = launch(dataDir, extraArgs);
  const port = await new Promise<number>((resolve, reject) => {
    lines.on('line', (l) => {
      if (!l.startsWith('{')) return;
      const rec = JSON.parse(l) as { msg?: string; port?: number };
      if (rec.msg === 'Warren listening' && typeof rec.port === 'number') resolve(rec.port);
    });
    void exited.then((e) => reject(new Error(`warren exited (${String(e.code ?? e.signal)}) before listening:\n${output.join('\n')}`)));
  });
  return {
    process: child,
    url: `amqp://guest:guest@127.0.0.1:${String(port)}`,
    port,
    output,
    exited,
    waitForOutput(text: string) {
      const seen = output.find((l) => l.includes(text));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const onLine = (l: string): void => {
          if (!l.includes(text)) return;
          lines.off('line', onLine);
          errLines.off('line', onLine);
          resolve(l);
        };
        lines.on('line', onLine);
        errLines.on('line', onLine);
        void exited.then(() => reject(new Error(`warren exited before printing ${JSON.stringify(text)}`)));
      });
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async terminate() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return (await exited).code;
    },
  };
}

/** Runs `warren start` expecting it to fail; resolves with its exit and output. */
export async function runWarrenExpectingExit(dataDir: string, extraArgs: readonly string[] = []): Promise<WarrenExit> {
  const { exited } = launch(dataDir, extraArgs);
  return exited;
}

/**
 * amqplib connection whose 'error' events (a killed broker, a forced close) are
 * swallowed: the tests look at outcomes, not at the client's complaint.
 */
export async function openConnection(url: string): Promise<ChannelModel> {
  const conn = await connect(url);
  conn.on('error', () => {});
  const closed = new Promise<void>((resolve) => conn.once('close', () => resolve()));
  closedEvents.set(conn, closed);
  return conn;
}

const closedEvents = new WeakMap<ChannelModel, Promise<void>>();

/** Resolves once the connection has closed (for whatever reason). */
export function connectionClosed(conn: ChannelModel): Promise<void> {
  const closed = closedEvents.get(conn);
  if (closed === undefined) throw new Error('not a connection from openConnection');
  return closed;
}

export async function openChannel(conn: ChannelModel): Promise<Channel> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  return ch;
}

export async function openConfirmChannel(conn: ChannelModel): Promise<ConfirmChannel> {
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  return ch;
}

/** Resolves with the reply code of the channel error that `op` provokes (e.g. a passive declare → 404). */
export async function channelErrorCode(conn: ChannelModel, op: (ch: Channel) => Promise<unknown>): Promise<number> {
  const ch = await openChannel(conn);
  try {
    await op(ch);
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
  await ch.close();
  throw new Error('expected a channel error');
}

/** Consumes (no-ack) exactly `count` messages of `queue`; returns their bodies as numbers, in delivery order. */
export async function drainNumbers(conn: ChannelModel, queue: string, count: number): Promise<number[]> {
  const numbers: number[] = [];
  if (count === 0) return numbers;
  const ch = await openChannel(conn);
  await new Promise<void>((resolve) => {
    void ch.consume(
      queue,
      (m) => {
        if (m === null) return;
        numbers.push(Number(m.content.toString()));
        if (numbers.length === count) resolve();
      },
      { noAck: true },
    );
  });
  await ch.close();
  return numbers;
}

/** A deterministic body of `size` bytes (not all one value, so misplaced chunks show). */
export function patternBody(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const FRAME_HEADER = 0x02;
const PROTOCOL_HEADER_SIZE = 8;
/** class-id (2) + weight (2) + body-size (8) precede the property flags and list */
const CONTENT_HEADER_PREFIX = 12;

/** Collects the property bytes (flags + list) of every content header frame in one direction. */
class ContentHeaderTap {
  readonly properties: Buffer[] = [];
  private pending: Buffer = Buffer.alloc(0);
  private skip: number;

  constructor(skip: number) {
    this.skip = skip;
  }

  push(chunk: Buffer): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.skip > 0) {
      const n = Math.min(this.skip, buf.length);
      this.skip -= n;
      buf = buf.subarray(n);
    }
    let off = 0;
    while (buf.length - off >= 7) {
      const size = buf.readUInt32BE(off + 3);
      if (buf.length - off < 8 + size) break;
      if (buf[off] === FRAME_HEADER) {
        this.properties.push(Buffer.from(buf.subarray(off + 7 + CONTENT_HEADER_PREFIX, off + 7 + size)));
      }
      off += 8 + size;
    }
    this.pending = Buffer.from(buf.subarray(off));
  }
}

export interface CapturingProxy {
  readonly url: string;
  /** content-header property bytes the client sent (publishes), in order */
  readonly published: Buffer[];
  /** content-header property bytes the broker sent (deliveries, get-oks, returns), in order */
  readonly delivered: Buffer[];
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of a broker that records content-header property bytes both ways,
 * so a test can compare what a client published with what the broker later delivers,
 * byte for byte, without depending on any client's property decoding.
 */
export async function startCapturingProxy(targetPort: number): Promise<CapturingProxy> {
  const published: Buffer[] = [];
  const delivered: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = netConnect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const up = new ContentHeaderTap(PROTOCOL_HEADER_SIZE);
    const down = new ContentHeaderTap(0);
    client.on('data', (d: Buffer) => {
      up.push(d);
      published.push(...up.properties.splice(0));
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      down.push(d);
      delivered.push(...down.properties.splice(0));
      client.write(d);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `amqp://guest:guest@127.0.0.1:${String(port)}`,
    published,
    delivered,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * One child broker on a fresh data dir per test, with its connections: start(), connect(),
 * crashAndRestart() (kill -9, then a new process on the same dir); everything is torn
 * down after each test. Call it at the top of a describe block.
 */
export interface ChildBrokerFixture {
  readonly dataDir: string;
  readonly warren: WarrenChild;
  /** extraArgs: more `warren start` flags, kept for the restarts */
  start(extraArgs?: readonly string[]): Promise<WarrenChild>;
  connect(): Promise<ChannelModel>;
  crashAndRestart(): Promise<WarrenChild>;
}

export function childBrokerFixture(): ChildBrokerFixture {
  let dataDir: string | undefined;
  let warren: WarrenChild | undefined;
  let args: readonly string[] = [];
  const conns: ChannelModel[] = [];
  afterEach(async () => {
    for (const c of conns.splice(0)) await c.close().catch(() => {});
    await warren?.kill9();
    warren = undefined;
    if (dataDir !== undefined) await removeDir(dataDir);
    dataDir = undefined;
  });
  return {
    get dataDir() {
      return dataDir!;
    },
    get warren() {
      return warren!;
    },
    async start(extraArgs = []) {
      dataDir = await tempDataDir();
      args = extraArgs;
      warren = await spawnWarren(dataDir, args);
      return warren;
    },
    async connect() {
      const c = await openConnection(warren!.url);
      conns.push(c);
      return c;
    },
    async crashAndRestart() {
      await warren!.kill9();
      await Promise.all(conns.splice(0).map(connectionClosed));
      warren = await spawnWarren(dataDir!, args);
      return warren;
    },
  };
}
