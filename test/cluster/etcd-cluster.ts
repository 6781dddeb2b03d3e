import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throw-away etcd cluster for tests: Debian's `etcd` binary, members on free loopback
 * ports, data in a temp dir. Never the system service (which may or may not be running
 * on :2379). Members can be killed, paused and restarted to inject faults.
 */
export interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  process: ChildProcess | null;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const children = new Set<ChildProcess>();
let exitHook = false;

/** a test worker that dies (timeout, crash) must not leave etcd members or nodes running */
export function killOnExit(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const c of children) c.kill('SIGKILL');
  });
}

export interface EtcdClusterOptions {
  /** etcd's --election-timeout (ms; default 1000, etcd's own default); the heartbeat is a tenth of it */
  readonly electionTimeoutMs?: number;
}

export class EtcdCluster {
  readonly members: EtcdMember[] = [];
  private constructor(
    readonly root: string,
    private readonly electionTimeoutMs: number,
  ) {}

  /** starts `size` members and waits until the cluster answers a write */
  static async start(size = 3, opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    if (spawnSync('etcd', ['--version']).status !== 0) {
      throw new Error("etcd is not installed: 'apt-get install etcd-server' (Debian's etcd 3.4; .ci/run does it)");
    }
    const root = await mkdtemp(join(tmpdir(), 'warren-etcd-'));
    const cluster = new EtcdCluster(root, opts.electionTimeoutMs ?? 1000);
    for (let i = 1; i <= size; i++) {
      cluster.members.push({ name: `e${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir: join(root, `e${i}`), process: null });
    }
    for (const m of cluster.members) cluster.spawnMember(m, 'new');
    await cluster.waitHealthy();
    return cluster;
  }

  get endpoints(): string[] {
    return this.members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  private spawnMember(m: EtcdMember, state: 'new' | 'existing'): void {
    const initial = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
    const args = [
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`,
      '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster', initial,
      '--initial-cluster-state', state,
      '--initial-cluster-token', `warren-test-${process.pid}`,
      '--heartbeat-interval', String(Math.round(this.electionTimeoutMs / 10)),
      '--election-timeout', String(this.electionTimeoutMs),
      '--log-level', 'error',
    ];
    const child = spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    killOnExit(child);
    child.stderr?.resume();
    child.on('error', () => {});
    m.process = child;
  }

  /** resolves once a put through any member succeeds (bounded) */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      for (const m of this.members) {
        if (m.process === null) continue;
        if (await putsThrough(m.clientPort)) return;
      }
      if (Date.now() > until) throw new Error('etcd cluster did not become healthy');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** resolves once a put through member `name` succeeds: it is back in the cluster and knows the leader (bounded) */
  async waitMemberServing(name: string, timeoutMs = 20_000): Promise<void> {
    const m = this.member(name);
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (await putsThrough(m.clientPort)) return;
      if (Date.now() > until) throw new Error(`etcd member ${name} did not rejoin`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** id of the raft leader member (by name), via the JSON gateway */
  async raftLeader(): Promise<string | null> {
    for (const m of this.members) {
      if (m.process === null) continue;
      try {
        const res = await fetch(`http://127.0.0.1:${m.clientPort}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
        const j = (await res.json()) as { header: { member_id: string }; leader: string };
        if (j.header.member_id === j.leader) return m.name;
        const list = (await (await fetch(`http://127.0.0.1:${m.clientPort}/v3/cluster/member/list`, { method: 'POST', body: '{}' })).json()) as {
          members: { ID: string; name: string }[];
        };
        return list.members.find((x) => x.ID === j.leader)?.name ?? null;
      } catch {
        // try the next member
      }
    }
    return null;
  }

  kill(name: string): void {
    const m = this.member(name);
    m.process?.kill('SIGKILL');
    m.process = null;
  }

  pause(name: string): void {
    this.member(name).process?.kill('SIGSTOP');
  }

  resume(name: string): void {
    this.member(name).process?.kill('SIGCONT');
  }

  restart(name: string): void {
    const m = this.member(name);
    if (m.process !== null) return;
    this.spawnMember(m, 'existing');
  }

  private member(name: string): EtcdMember {
    const m = this.members.find((x) => x.name === name);
    if (m === undefined) throw new Error(`no etcd member ${name}`);
    return m;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.members.map(
        (m) =>
          new Promise<void>((resolve) => {
            const p = m.process;
            m.process = null;
            if (p === null || p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGCONT');
            p.kill('SIGKILL');
          }),
      ),
    );
    await rm(this.root, { recursive: true, force: true });
  }
}

/** whether a put through the member on `clientPort` succeeds within a second (it is up and knows a leader) */
async function putsThrough(clientPort: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${clientPort}/v3/kv/put`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from('health').toString('base64'), value: '' }),
      signal: AbortSignal.timeout(1000),
    });
    return res.ok;
  } catch {
    return false; // not up yet
  }
}
