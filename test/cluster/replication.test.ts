import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LevelApplyTarget } from '../../src/cluster/apply-target.js';
import { ClusterServer, dialCluster } from '../../src/cluster/cluster-server.js';
import { Purpose, connectHandshake, frame, FrameType } from '../../src/cluster/link.js';
import { OpLog } from '../../src/cluster/op-log.js';
import { encodeRecord, type Op } from '../../src/cluster/record.js';
import { ReplicationFollower } from '../../src/cluster/replication-follower.js';
import { ReplicationLeader } from '../../src/cluster/replication-leader.js';
import { ReplicatedLevelStore } from '../../src/cluster/replicated-store.js';
import { DELETION_CHUNK } from '../../src/store/background-deletion.js';
import { LevelStore } from '../../src/store/level-store.js';
import type { EntryRecord, MessageRecord, QueueRecord } from '../../src/store/store.js';

const logger = pino({ level: process.env.CLUSTER_TEST_LOG ?? 'silent' });
const secret = randomBytes(32);
type Db = Level<Buffer, Buffer>;

interface Node {
  id: string;
  dir: string;
  db: Db;
  log: OpLog;
  target: LevelApplyTarget;
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

async function node(id: string, root: string): Promise<Node> {
  const dir = join(root, id);
  const db: Db = new Level<Buffer, Buffer>(join(dir, 'store'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const log = new OpLog(join(dir, 'log'));
  await log.open();
  cleanup.push(async () => {
    await log.close();
    await db.close();
  });
  return { id, dir, db, log, target: new LevelApplyTarget(db) };
}

class FakeGate {
  valid = true;
  fenced = false;
  writes: string[][] = [];
  canCommit(): boolean {
    return this.valid;
  }
  async writeIsr(members: readonly string[]): Promise<boolean> {
    if (this.fenced) return false;
    this.writes.push([...members].sort());
    return true;
  }
  get isr(): string[] {
    return this.writes[this.writes.length - 1] ?? [];
  }
}

async function root(): Promise<string> {
  const r = await mkdtemp(join(tmpdir(), 'warren-repl-'));
  cleanup.push(() => rm(r, { recursive: true, force: true }));
  return r;
}

async function startLeader(n: Node, gate: FakeGate, members: string[], opts: { retain?: number; timeout?: number; term?: number; logger?: typeof logger } = {}) {
  const leader = new ReplicationLeader({
    log: n.log,
    target: n.target,
    nodeId: n.id,
    term: opts.term ?? 10,
    gate,
    minInsync: 1,
    followerAckTimeoutMs: opts.timeout ?? 500,
    retainRecords: opts.retain ?? 10_000,
    logger: opts.logger ?? logger,
  });
  const server = new ClusterServer({
    host: '127.0.0.1',
    port: 0,
    tls: null,
    secret: () => secret,
    self: () => ({ nodeId: n.id, term: leader.term }),
    onLink: (purpose, socket, nodeId, rest) => (purpose === Purpose.Replicate ? leader.attach(socket, nodeId, rest) : socket.destroy()),
    logger,
  });
  const port = await server.listen();
  cleanup.push(async () => {
    leader.stop();
    await server.close();
  });
  return { leader, port, started: leader.start(members) };
}

function follower(n: Node): ReplicationFollower {
  const f = new ReplicationFollower({ log: n.log, target: n.target, nodeId: n.id, secret: () => secret, dial: dialCluster(null), logger });
  cleanup.push(() => f.stop());
  return f;
}

async function dump(db: Db): Promise<string[]> {
  return (await db.iterator().all()).map(([k, v]) => `${k.toString('hex')}=${v.toString('hex')}`);
}

function put(k: string, v: string): Op {
  return { type: 'put', key: Buffer.from(k), value: Buffer.from(v) };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('replication', () => {
  it('commits a write only once every ISR follower has it, and followers apply exactly the leader\'s writes', async () => {
    const r = await root();
    const [a, b, c] = [await node('a', r), await node('b', r), await node('c', r)];
    const gate = new FakeGate();
    const { leader, port, started } = await startLeader(a, gate, ['a', 'b', 'c']);
    const fb = follower(b);
    const fc = follower(c);
    let committed = false;
    void started.then(() => (committed = true));
    fb.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    await new Promise((res) => setTimeout(res, 200));
    expect(committed).toBe(false); // c has not acked the term start
    fc.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    await started;
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) writes.push(leader.append([put(`k${i % 50}`, `v${i}`), { type: 'del', key: Buffer.from(`k${(i + 7) % 50}`) }]));
    await Promise.all(writes);
    await until(() => fb.status().appliedSeq === leader.status().commitSeq && fc.status().appliedSeq === leader.status().commitSeq, 'followers applied');
    const expected = await dump(a.db);
    expect(expected.length).toBeGreaterThan(0);
    expect(await dump(b.db)).toEqual(expected);
    expect(await dump(c.db)).toEqual(expected);
    expect(gate.isr).toEqual(['a', 'b', 'c']);
  });

  it('evicts a follower that goes away (ISR written first), then takes it back after catch-up', async () => {
    const r = await root();
    const [a, b] = [await node('a', r), await node('b', r)];
    const gate = new FakeGate();
    const { leader, port, started } = await startLeader(a, gate, ['a', 'b']);
    const fb = follower(b);
    fb.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    await started;
    await leader.append([put('x', '1')]);
    fb.follow(null); // link down
    const w = leader.append([put('x', '2')]);
    await w;
    expect(gate.isr).toEqual(['a']); // the write committed only after b left the ISR in etcd
    for (let i = 0; i < 20; i++) await leader.append([put(`y${i}`, 'z')]);
    fb.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    await until(() => gate.isr.includes('b'), 'b back in the ISR');
    await leader.append([put('x', '3')]);
    await until(() => fb.status().appliedSeq === leader.status().commitSeq, 'b applied');
    expect(await dump(b.db)).toEqual(await dump(a.db));
  });

  it('followers get every record intact while the leader reuses its record buffers many times over, live and catching up from the log', async () => {
    const r = await root();
    const [a, b] = [await node('a', r), await node('b', r)];
    const gate = new FakeGate();
    const { leader, port, started } = await startLeader(a, gate, ['a', 'b'], { timeout: 10_000 });
    const fb = follower(b);
    fb.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    await started;
    // ~300 KiB records, each of its own bytes: 36 MiB live, then 18 MiB while b is away
    // (the leader's slab is 16 MiB: reused over and over), which b then reads from the log
    const big = (i: number): Op => ({ type: 'put', key: Buffer.from(`big${i % 40}`), value: Buffer.alloc(300 * 1024, i % 251) });
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 120; i++) writes.push(leader.append([big(i), put(`n${i}`, `${i}`)]));
    await Promise.all(writes);
    await until(() => fb.status().appliedSeq === leader.status().commitSeq, 'b applied the live records');
    expect(await dump(b.db)).toEqual(await dump(a.db));
    fb.follow(null);
    await until(() => !gate.isr.includes('b'), 'b out of the ISR');
    // one at a time: each record's buffer is free again (logged, no follower) before the next
    for (let i = 120; i < 180; i++) await leader.append([big(i), put(`n${i}`, `${i}`)]);
    fb.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    await until(() => fb.status().appliedSeq === leader.status().commitSeq, 'b caught up from the log', 20_000);
    expect(await dump(b.db)).toEqual(await dump(a.db));
  }, 30_000);

  it('a follower that catches up while the term\'s first ISR write is under way joins onto that ISR, not instead of it', async () => {
    // the previous leader c, left out of the new term's ISR, rejoins at once; etcd is slow
    // (just back from a quorum loss) and the leader's first ISR write has not returned yet
    const r = await root();
    const [a, b, c] = [await node('a', r), await node('b', r), await node('c', r)];
    let release!: () => void;
    const held = new Promise<void>((res) => (release = res));
    const gate = new (class extends FakeGate {
      first = true;
      override async writeIsr(members: readonly string[]): Promise<boolean> {
        if (this.first) {
          this.first = false;
          await held;
        }
        return super.writeIsr(members);
      }
    })();
    const lines: { msg: string; follower?: string }[] = [];
    const capture = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string; follower?: string }) });
    const { leader, port, started } = await startLeader(a, gate, ['a', 'b'], { logger: capture });
    const fb = follower(b);
    const fc = follower(c);
    fb.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    fc.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    await until(() => lines.some((l) => l.msg === 'cluster: follower caught up; joining the ISR' && l.follower === 'c'), 'c caught up');
    release();
    await started;
    await until(() => gate.isr.join() === 'a,b,c', 'c written into the ISR');
    expect(gate.writes[0]).toEqual(['a', 'b']);
    expect(leader.status().isr).toEqual(['a', 'b', 'c']);
  });

  it('evicts an ISR member that never shows up', async () => {
    const r = await root();
    const a = await node('a', r);
    const gate = new FakeGate();
    const { leader, started } = await startLeader(a, gate, ['a', 'gone'], { timeout: 200 });
    await started;
    await leader.append([put('k', 'v')]);
    expect(gate.isr).toEqual(['a']);
  });

  it('catches a follower up from a snapshot when the log no longer reaches back to it', async () => {
    const r = await root();
    const [a, b] = [await node('a', r), await node('b', r)];
    const gate = new FakeGate();
    const { leader, port, started } = await startLeader(a, gate, ['a'], { retain: 10 });
    await started;
    for (let i = 0; i < 600; i++) await leader.append([put(`k${i % 700}`, `v${i}`), put(`j${i % 300}`, `w${i}`)]);
    expect(a.log.basePosition.seq).toBeGreaterThan(0); // pruned
    await b.db.put(Buffer.from('stale'), Buffer.from('junk')); // whatever b had is replaced
    const fb = follower(b);
    fb.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    await until(() => gate.isr.includes('b'), 'b joined');
    await leader.append([put('after', 'snapshot')]);
    await until(() => fb.status().appliedSeq === leader.status().commitSeq, 'b applied');
    expect(await dump(b.db)).toEqual(await dump(a.db));
    expect(b.log.syncing).toBe(false);
  });

  it('cuts a follower\'s divergent log tail (records of an old term the new leader never had)', async () => {
    const r = await root();
    const [a, b] = [await node('a', r), await node('b', r)];
    // both had seq 1 (term 5, committed); b also got seq 2-3 of term 5 that never committed
    const r1 = encodeRecord(5, 1, [put('k', 'one')]);
    await a.log.append([r1], true);
    await b.log.append([r1, encodeRecord(5, 2, [put('k', 'lost')]), encodeRecord(5, 3, [put('j', 'lost')])], true);
    await b.target.apply([put('k', 'one')]);
    await b.log.setApplied({ seq: 1, term: 5 });
    const gate = new FakeGate();
    const { leader, port, started } = await startLeader(a, gate, ['a', 'b'], { term: 9 });
    const fb = follower(b);
    fb.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 9 });
    await started;
    await leader.append([put('k', 'two')]);
    await until(() => fb.status().appliedSeq === leader.status().commitSeq, 'b applied');
    expect(await dump(b.db)).toEqual(await dump(a.db));
    expect(b.log.lastPosition).toEqual(a.log.lastPosition);
    expect((await b.db.get(Buffer.from('j')))).toBeUndefined();
  });

  it('commits nothing while the lease deadline has passed', async () => {
    const r = await root();
    const a = await node('a', r);
    const gate = new FakeGate();
    const { leader, started } = await startLeader(a, gate, ['a']);
    await started;
    gate.valid = false;
    let done = false;
    const w = leader.append([put('k', 'v')]).then(() => (done = true), () => (done = true));
    await new Promise((res) => setTimeout(res, 300));
    expect(done).toBe(false);
    expect(await a.db.get(Buffer.from('k'))).toBeUndefined();
    leader.stop();
    await w;
  });

  it('refuses bad or unauthenticated traffic on the cluster port and keeps replicating', async () => {
    const r = await root();
    const [a, b] = [await node('a', r), await node('b', r)];
    const gate = new FakeGate();
    const { leader, port, started } = await startLeader(a, gate, ['a', 'b']);
    const fb = follower(b);
    fb.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    await started;
    const closed = (write: (s: ReturnType<typeof connect>) => void): Promise<void> =>
      new Promise((resolve) => {
        const s = connect({ host: '127.0.0.1', port }, () => write(s));
        s.on('error', () => {});
        s.on('close', () => resolve());
        s.resume();
      });
    await closed((s) => s.write(randomBytes(2000)));
    await closed((s) => s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1])));
    await closed((s) => s.write('AMQP\x00\x00\x09\x01'));
    // the wrong secret
    await expect(connectHandshake(dialCluster(null)(`127.0.0.1:${port}`), randomBytes(32), 'mallory', Purpose.Replicate)).rejects.toThrow();
    // the right secret, then garbage instead of FOLLOW / acks beyond the log
    for (const bad of [frame(FrameType.Ack, Buffer.alloc(8, 0xff)), frame(FrameType.Follow, Buffer.from('{nope')), frame(0x77)]) {
      const s = dialCluster(null)(`127.0.0.1:${port}`);
      await connectHandshake(s, secret, 'mallory', Purpose.Replicate);
      await new Promise<void>((resolve) => {
        s.on('close', () => resolve());
        s.on('error', () => {});
        s.resume();
        s.write(bad);
      });
    }
    await leader.append([put('still', 'fine')]);
    await until(() => fb.status().appliedSeq === leader.status().commitSeq, 'b applied');
    expect(gate.isr).toEqual(['a', 'b']);
    expect(await dump(b.db)).toEqual(await dump(a.db));
  });

  it('a leader\'s store replicates every write it makes: group commits, purge moves, background deletion chunks and recovery\'s clean-ups', async () => {
    const r = await root();
    const storeDir = join(r, 'a', 'store');
    const msg = (n: number): MessageRecord => ({ exchange: '', routingKey: 'q', rawProperties: Buffer.from([0x10, 0x00, 0x02]), body: Buffer.alloc(16, n & 0xff) });
    const ent = (queueId: number, seq: number, messageId: number, extra: Partial<EntryRecord> = {}): EntryRecord => ({
      queueId,
      priority: 0,
      seq,
      messageId,
      refs: 1,
      redelivered: false,
      transient: false,
      expiresAt: 0,
      ...extra,
    });
    const rec = (name: string, id: number): QueueRecord => ({ vhost: '/', name, id, autoDelete: false, arguments: new Map() });
    // what both nodes hold before this leader's term: a queue with a paged-out transient
    // entry, as format 3 and earlier wrote them (a restart drops it)
    const before = new LevelStore(storeDir, logger);
    await before.open();
    await before.recover();
    before.putVhost('/');
    const paged = before.allocateQueueId();
    before.putQueue(rec('paged', paged));
    before.putEntry(ent(paged, 1, before.putMessage(msg(1)), { transient: true }));
    await before.close();
    const b = await node('b', r);
    const held = new Level<Buffer, Buffer>(storeDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await held.open();
    await b.target.putMany(await held.iterator().all());
    await held.close();

    const store = new ReplicatedLevelStore(storeDir, logger);
    await store.open();
    const log = new OpLog(join(r, 'a', 'log'));
    await log.open();
    cleanup.push(async () => {
      await store.close().catch(() => {});
      await log.close();
    });
    const a: Node = { id: 'a', dir: join(r, 'a'), db: store.levelDb(), log, target: new LevelApplyTarget(store.levelDb()) };
    const gate = new FakeGate();
    const { leader, port, started } = await startLeader(a, gate, ['a', 'b']);
    const fb = follower(b);
    fb.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    await started;
    store.replicator = leader;

    const recovered = await store.recover();
    expect(recovered.queues.find((q) => q.queueId === paged)?.count).toBe(0);
    const big = store.allocateQueueId();
    const purged = store.allocateQueueId();
    store.putQueue(rec('big', big));
    store.putQueue(rec('purged', purged));
    for (let seq = 1; seq <= 2 * DELETION_CHUNK + 100; seq++) store.putEntry(ent(big, seq, store.putMessage(msg(seq))));
    const deliveredId = store.putMessage(msg(7));
    store.putEntry(ent(purged, 1, deliveredId));
    store.putEntry(ent(purged, 2, store.putMessage(msg(8))));
    await store.flush();
    // purge: the delivered entry moves to the new id; delete: the big queue goes chunk by chunk
    store.updateEntry(ent(purged, 1, deliveredId, { redelivered: true }));
    const newId = store.allocateQueueId();
    store.purgeQueue(rec('purged', newId), purged);
    store.moveEntry(purged, ent(newId, 1, deliveredId, { redelivered: true }));
    store.deleteQueue('/', 'big', big);
    await store.flush();
    await store.deletionsDone();
    await store.flush();

    await until(() => fb.status().appliedSeq === leader.status().commitSeq, 'b applied');
    const leaderDump = await dump(store.levelDb());
    expect(leaderDump.length).toBeGreaterThan(0);
    expect(await dump(b.db)).toEqual(leaderDump);
    expect(await store.readEntries(big, null, 10)).toEqual([]);
  });
});

describe('follower store recovery', () => {
  it('replays the records its op log holds as committed into its store at start, with no leader, and nothing past the commit point', async () => {
    const r = await root();
    const b = await node('b', r);
    await b.log.append([encodeRecord(4, 1, [put('a', '1')]), encodeRecord(4, 2, [put('b', '2')]), encodeRecord(4, 3, [put('c', '3')])], true);
    await b.log.setCommitted(2); // seq 3 arrived, its commit was never heard of
    const f = follower(b);
    await until(() => f.status().appliedSeq === 2, 'the committed records applied');
    expect(await dump(b.db)).toEqual([`${Buffer.from('a').toString('hex')}=${Buffer.from('1').toString('hex')}`, `${Buffer.from('b').toString('hex')}=${Buffer.from('2').toString('hex')}`]);
    await f.stop();
    expect(b.log.applied).toEqual({ seq: 2, term: 4 });
  });
});

describe('follower applier groups', () => {
  it('applies a long committed tail in groups of at most 1,024 records, in order (a later write of a key wins)', async () => {
    const r = await root();
    const b = await node('b', r);
    const records: Buffer[] = [];
    for (let seq = 1; seq <= 2500; seq++) records.push(encodeRecord(4, seq, [put(`k${seq % 7}`, `v${seq}`), put(`n${seq}`, 'x')]));
    await b.log.append(records, true);
    await b.log.setCommitted(2500);
    const writes: number[] = [];
    const applyRecords = b.target.applyRecords.bind(b.target);
    b.target.applyRecords = async (recs) => {
      writes.push(recs.length);
      await applyRecords(recs);
    };
    const f = follower(b);
    await until(() => f.status().appliedSeq === 2500, 'the tail applied');
    expect(writes).toEqual([1024, 1024, 452]);
    for (let k = 0; k < 7; k++) {
      const last = 2500 - ((2500 - k) % 7); // the last seq writing k<k>
      expect((await b.db.get(Buffer.from(`k${k}`)))?.toString()).toBe(`v${last}`);
    }
  });
});

describe('follower link retries', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('dials again soon (20, 40, 80 ms…) while the node it follows answers but does not lead yet, and after RETRY_MS on any other failure', async () => {
    const r = await root();
    const b = await node('b', r);
    let term = 0; // the elected node, still promoting: its cluster port answers with term 0
    const server = new ClusterServer({
      host: '127.0.0.1',
      port: 0,
      tls: null,
      secret: () => secret,
      self: () => ({ nodeId: 'a', term }),
      onLink: (_purpose, socket) => socket.destroy(),
      logger,
    });
    const port = await server.listen();
    cleanup.push(() => server.close());
    const closes: Promise<void>[] = [];
    const dial = (hostPort: string) => {
      const s = dialCluster(null)(hostPort);
      closes.push(new Promise<void>((resolve) => s.once('close', () => resolve())));
      return s;
    };
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const f = new ReplicationFollower({ log: b.log, target: b.target, nodeId: 'b', secret: () => secret, dial, logger });
    cleanup.push(() => f.stop());
    // the link fails (handshake over real sockets), then the retry waits on the faked clock
    const failed = async (n: number): Promise<void> => {
      await closes[n - 1];
      for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
    };
    const dialsAfter = async (ms: number): Promise<number> => {
      await vi.advanceTimersByTimeAsync(ms);
      return closes.length;
    };
    f.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 10 });
    expect(closes.length).toBe(1);
    let dials = 1;
    for (const wait of [20, 40, 80, 160, 300, 300]) {
      await failed(dials);
      expect(await dialsAfter(wait - 1)).toBe(dials);
      expect(await dialsAfter(1)).toBe(++dials);
    }
    // another node's answer (not a promotion in progress) is retried at the ordinary pace
    term = 11;
    await failed(dials);
    expect(await dialsAfter(299)).toBe(dials);
    expect(await dialsAfter(1)).toBe(++dials);
    // a new leader starts the short retries over
    term = 0;
    f.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 12 });
    expect(closes.length).toBe(++dials);
    await failed(dials);
    expect(await dialsAfter(19)).toBe(dials);
    expect(await dialsAfter(1)).toBe(++dials);
  });
});
