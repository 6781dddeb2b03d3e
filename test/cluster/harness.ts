import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { BROKER_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { readClusterStatus, type ClusterStatus } from '../../src/cluster/etcd-coordinator.js';
import { OpLog } from '../../src/cluster/op-log.js';
import { decodeRecord } from '../../src/cluster/record.js';
import { BlackholeProxy } from './blackhole-proxy.js';
import { EtcdCluster, freePort, killOnExit } from './etcd-cluster.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const CLUSTER_NAME = 'harness';
/** lines of each node's log printed when a failed test keeps them (keepForFailure) */
const LOG_TAIL = 60;

export interface WarrenNode {
  readonly id: string;
  readonly amqpPort: number;
  readonly clusterPort: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** this node's own way to etcd: one switchable proxy per etcd member */
  readonly etcdProxies: BlackholeProxy[];
  proc: ChildProcess | null;
  /** wall-clock ms at which the harness killed it (ends its leadership, if it led) */
  readonly kills: number[];
}

export interface LogLine {
  readonly time: number;
  readonly msg: string;
  readonly [k: string]: unknown;
}

export interface HarnessOptions {
  readonly nodes?: number;
  readonly etcdMembers?: number;
  readonly leaseTtl?: number;
  /** the etcd members' --election-timeout (ms, default 1000) */
  readonly etcdElectionTimeoutMs?: number;
}

/**
 * Three etcd members and three Warren nodes (the real CLI, as child processes) on loopback
 * ports, with faults: kill -9, SIGSTOP/SIGCONT, a node cut off from etcd only (its etcd
 * proxies turn into blackholes), etcd member loss and etcd quorum loss.
 */
export class WarrenCluster {
  readonly nodes: WarrenNode[] = [];
  private constructor(
    readonly root: string,
    readonly etcd: EtcdCluster,
    private readonly leaseTtl: number,
  ) {}

  static async start(opts: HarnessOptions = {}): Promise<WarrenCluster> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first`);
    const etcd = await EtcdCluster.start(opts.etcdMembers ?? 3, { electionTimeoutMs: opts.etcdElectionTimeoutMs });
    const root = await mkdtemp(join(tmpdir(), 'warren-ha-'));
    const c = new WarrenCluster(root, etcd, opts.leaseTtl ?? 3);
    // every proxy listens first (on a port of its own): a port picked by freePort is free only
    // until something else binds it, and a proxy started later could take a node's port
    const proxiesPerNode: BlackholeProxy[][] = [];
    for (let i = 1; i <= (opts.nodes ?? 3); i++) {
      const proxies = etcd.members.map((m) => new BlackholeProxy('127.0.0.1', m.clientPort));
      for (const p of proxies) await p.start();
      proxiesPerNode.push(proxies);
    }
    const picked = new Set<number>();
    const pick = async (): Promise<number> => {
      for (;;) {
        const port = await freePort();
        if (!picked.has(port)) return picked.add(port), port;
      }
    };
    for (let i = 1; i <= (opts.nodes ?? 3); i++) {
      const proxies = proxiesPerNode[i - 1]!;
      const id = `n${i}`;
      c.nodes.push({
        id,
        amqpPort: await pick(),
        clusterPort: await pick(),
        dataDir: join(root, id),
        logFile: join(root, `${id}.log`),
        etcdProxies: proxies,
        proc: null,
        kills: [],
      });
    }
    for (const n of c.nodes) c.spawn(n);
    return c;
  }

  node(id: string): WarrenNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  get amqpUrls(): string[] {
    return this.nodes.map((n) => `amqp://guest:guest@127.0.0.1:${n.amqpPort}`);
  }

  spawn(n: WarrenNode): void {
    if (n.proc !== null) return;
    const fd = openSync(n.logFile, 'a');
    const args = [
      ...BROKER_NODE_FLAGS,
      CLI, 'start',
      '--host', '127.0.0.1',
      '--port', String(n.amqpPort),
      '--data-dir', n.dataDir,
      '--log-level', 'info',
      '--cluster-etcd', n.etcdProxies.map((p) => `127.0.0.1:${p.port}`).join(','),
      '--cluster-port', String(n.clusterPort),
      '--cluster-advertise', '127.0.0.1',
      '--cluster-name', CLUSTER_NAME,
      '--cluster-lease-ttl', String(this.leaseTtl),
      '--node-id', n.id,
      '--consumer-timeout', '0',
      '--disk-free-limit', '0',
      '--management-port', '0',
      '--metrics-port', '0',
    ];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    killOnExit(proc);
    proc.on('error', () => {});
    proc.on('exit', () => {
      if (n.proc === proc) n.proc = null;
    });
    n.proc = proc;
  }

  /** kill -9; resolves once the process is gone */
  async kill9(id: string): Promise<number> {
    const n = this.node(id);
    const p = n.proc;
    const at = Date.now();
    n.kills.push(at);
    if (p === null) return at;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGCONT');
    p.kill('SIGKILL');
    await gone;
    return at;
  }

  pause(id: string): number {
    this.node(id).proc?.kill('SIGSTOP');
    return Date.now();
  }

  resume(id: string): void {
    this.node(id).proc?.kill('SIGCONT');
  }

  /** the node still reaches its peers and clients, but not etcd */
  cutEtcd(id: string): void {
    for (const p of this.node(id).etcdProxies) p.cut();
  }

  healEtcd(id: string): void {
    for (const p of this.node(id).etcdProxies) p.heal();
  }

  /** the cluster as etcd describes it; retried while etcd elects a new raft leader (bounded) */
  async status(timeoutMs = 15_000): Promise<ClusterStatus> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await readClusterStatus(this.etcd.endpoints, CLUSTER_NAME);
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** waits until a leader is open for traffic and the ISR has `isrSize` members; returns the leader's id */
  async settled(isrSize: number, timeoutMs = 30_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        const s = await readClusterStatus(this.etcd.endpoints, CLUSTER_NAME);
        if (s.leader !== null && s.isr.length >= isrSize && s.nodes.find((n) => n.id === s.leader)?.role === 'leader') return s.leader;
      } catch {
        // etcd busy
      }
      if (Date.now() > end) throw new Error(`cluster did not settle (ISR of ${isrSize}) within ${timeoutMs} ms: ${JSON.stringify(await this.status().catch(() => null))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** waits until a node other than `id` leads and is open for traffic */
  async leaderOtherThan(id: string, isrSize: number, timeoutMs = 30_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const remaining = end - Date.now();
      if (remaining <= 0) throw new Error(`no leader other than ${id} within ${timeoutMs} ms`);
      const leader = await this.settled(isrSize, remaining);
      if (leader !== id) return leader;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  logs(id: string): LogLine[] {
    const text = existsSync(this.node(id).logFile) ? readFileSync(this.node(id).logFile, 'utf8') : '';
    const out: LogLine[] = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as LogLine);
      } catch {
        // a line cut by kill -9
      }
    }
    return out;
  }

  /**
   * Leadership intervals from the nodes' logs: from "open for traffic" to the earliest of
   * its logged deadline at step-down, or the harness killing it.
   */
  terms(): { node: string; term: number; from: number; to: number }[] {
    const out: { node: string; term: number; from: number; to: number }[] = [];
    for (const n of this.nodes) {
      const lines = this.logs(n.id);
      for (let i = 0; i < lines.length; i++) {
        const l = lines[i]!;
        if (l.msg !== 'cluster: leader open for traffic') continue;
        const term = l.term as number;
        let to = Number.POSITIVE_INFINITY;
        const down = lines.slice(i + 1).find((x) => x.msg === 'cluster: stepping down' || x.msg === 'cluster: leader open for traffic');
        if (down !== undefined && down.msg === 'cluster: stepping down') to = Math.min(down.time, (down.deadlineAt as number | undefined) ?? down.time);
        const killed = n.kills.find((k) => k >= l.time);
        if (killed !== undefined) to = Math.min(to, killed);
        out.push({ node: n.id, term, from: l.time, to });
      }
    }
    return out.sort((a, b) => a.term - b.term);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => (n.proc === null ? undefined : this.kill9(n.id))));
  }

  /**
   * A digest of one node's store after applying the committed records its op log holds up to
   * `upTo` (what promotion would apply). Nodes must be stopped.
   */
  async storeDigest(id: string, upTo: number): Promise<{ digest: string; applied: number; keys: number }> {
    const n = this.node(id);
    const log = new OpLog(join(n.dataDir, 'cluster', 'log'));
    await log.open();
    const db = new Level<Buffer, Buffer>(n.dataDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    try {
      let applied = log.applied.seq;
      for (let seq = applied + 1; seq <= Math.min(upTo, log.lastPosition.seq); seq++) {
        const buf = await log.get(seq);
        if (buf === undefined) break;
        const batch = db.batch();
        for (const op of decodeRecord(buf).ops) op.type === 'put' ? batch.put(op.key, op.value) : batch.del(op.key);
        await batch.write();
        applied = seq;
      }
      const h = createHash('sha256');
      let keys = 0;
      for await (const [k, v] of db.iterator()) {
        h.update(k).update(v);
        keys++;
      }
      return { digest: h.digest('hex'), applied, keys };
    } finally {
      await db.close();
      await log.close();
    }
  }

  /** the highest applied seq among the nodes' op logs (the last leader's) */
  async maxApplied(): Promise<number> {
    let max = 0;
    for (const n of this.nodes) {
      const log = new OpLog(join(n.dataDir, 'cluster', 'log'));
      await log.open();
      max = Math.max(max, log.applied.seq);
      await log.close();
    }
    return max;
  }

  /**
   * Keeps the nodes' logs and data dirs (as WARREN_HA_KEEP does) and prints where they are
   * with each log's last lines: a test calls it when it fails (onTestFailed), so that a
   * failure in CI, whose output is all that is kept, can be read.
   */
  keepForFailure(): void {
    this.keep = true;
  }

  private keep = (process.env.WARREN_HA_KEEP ?? '') !== '';

  async destroy(): Promise<void> {
    await this.stopAll();
    for (const n of this.nodes) for (const p of n.etcdProxies) await p.stop();
    await this.etcd.stop();
    if (!this.keep) {
      await rm(this.root, { recursive: true, force: true });
      return;
    }
    const tails = this.nodes.map((n) => {
      let lines: string[] = [];
      try {
        lines = readFileSync(n.logFile, 'utf8').trimEnd().split('\n');
      } catch {
        // no log
      }
      return `--- ${n.id} (${n.logFile}), last ${Math.min(LOG_TAIL, lines.length)} of ${lines.length} lines\n${lines.slice(-LOG_TAIL).join('\n')}`;
    });
    console.error(`cluster harness: nodes' logs and data dirs kept in ${this.root}\n${tails.join('\n')}`);
  }
}
