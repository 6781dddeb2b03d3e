import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Level } from 'level';
import type { Logger } from 'pino';
import { Broker } from './broker.js';
import type { BrokerAdmin } from './operations/broker-admin.js';
import type { ClusterConfig, WarrenConfig } from './config/config.js';
import { CLEAN_SHUTDOWN_FILE } from './store/clean-shutdown.js';
import { lockDataDir, type DirLock } from './store/dir-lock.js';
import { StoreError } from './store/store-error.js';
import { LevelStore } from './store/level-store.js';
import { listen } from './transport/listener.js';
import { LevelApplyTarget } from './cluster/apply-target.js';
import { ClusterServer, dialCluster, type ClusterTls } from './cluster/cluster-server.js';
import type { IsrRecord, LeaderInfo, NodeRole } from './cluster/coordinator.js';
import { DEFAULT_KEEPALIVE_MS, DEFAULT_MARGIN_MS, EtcdCoordinator } from './cluster/etcd-coordinator.js';
import { connectHandshake, Purpose, type PurposeCode } from './cluster/link.js';
import { OpLog } from './cluster/op-log.js';
import { ClientProxy } from './cluster/client-proxy.js';
import { parseProxyV1 } from './cluster/proxy-protocol.js';
import { ReplicatedLevelStore } from './cluster/replicated-store.js';
import { ReplicationFollower, type FollowerStatus } from './cluster/replication-follower.js';
import { ReplicationLeader, type LeaderStatus } from './cluster/replication-leader.js';

type Db = Level<Buffer, Buffer>;

/** What a node reports about itself (for `warren cluster status`, the management API and metrics). */
export interface ClusterNodeStatus {
  readonly nodeId: string;
  readonly role: NodeRole;
  readonly term: number | null;
  readonly leader: string | null;
  readonly isr: readonly string[];
  /** records committed but not yet in this node's store (follower), or the largest follower lag (leader) */
  readonly lag: number;
  readonly replication: LeaderStatus | FollowerStatus | null;
}

/** A running cluster node: where clients connect (any node), its status, and close. */
export interface RunningClusterNode {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly nodeId: string;
  status(): ClusterNodeStatus;
  /** the leader's broker administration (users, vhosts, permissions…); null while this node follows */
  admin(): BrokerAdmin | null;
  close(reason?: string): Promise<void>;
}

const NODE_ID_FILE = 'node-id';
const RETAIN_RECORDS = 20_000;
/** a failed campaign (etcd busy or failing over) is tried again after this long */
const CAMPAIGN_RETRY_MS = 1000;
/**
 * Client connections that arrive while this node is being promoted wait for it to open
 * (at most this long, at most HOLD_MAX of them) instead of being closed: a client told to
 * go away reconnects only after its own backoff (amqplib's users pick their own, pika
 * waits 2 s between attempts by default, the Java client 5 s), which would add to every
 * failover. The client's AMQP header waits in the socket; nothing is read before the
 * broker takes it.
 */
const HOLD_MS = 10_000;
const HOLD_MAX = 1024;

/** a proxied client whose leader side ended is destroyed if it has not closed its side after this long */
const PROXY_LINGER_MS = 5_000;
/**
 * A client connecting through a follower waits this long past the lease TTL, from its connect,
 * for a leader to answer it (client-proxy.ts): a dead leader's lease runs out within the TTL,
 * and the election and the new leader's opening (store recovery, its first ISR write) take
 * about a second more, up to a few with a large backlog. 8 s at the default TTL of 3 s, under
 * the Java client's 10 s handshake timeout and pika's 10 s socket timeout.
 */
const PROXY_WAIT_MARGIN_MS = 5_000;
/** what a client may send before a leader answers (its protocol header is 8 bytes) */
const PROXY_MAX_BUFFERED = 4096;
/** clients waiting for a leader at most (their kept bytes: at most 4 MiB) */
const PROXY_MAX_PENDING = 1024;
/** first delay before the same leader is tried again after it refused a client */
const PROXY_RETRY_MS = 50;

interface HeldConnection {
  readonly socket: Duplex;
  readonly address: string | undefined;
  readonly port: number | undefined;
}

/** The node id: given, or generated once and kept in the data dir. */
async function resolveNodeId(clusterDir: string, given: string | null, logger: Logger): Promise<string> {
  const file = join(clusterDir, NODE_ID_FILE);
  let stored: string | null = null;
  try {
    stored = (await readFile(file, 'utf8')).trim() || null;
  } catch {
    // first start
  }
  if (given !== null) {
    if (stored !== null && stored !== given) logger.warn({ stored, given }, 'cluster: --node-id differs from the id kept in the data dir; using --node-id');
    if (stored !== given) await writeFile(file, `${given}\n`);
    return given;
  }
  if (stored !== null) return stored;
  const id = `n-${randomBytes(4).toString('hex')}`;
  await writeFile(file, `${id}\n`);
  return id;
}

async function readTls(config: ClusterConfig): Promise<ClusterTls | null> {
  if (config.tls === null) return null;
  const [cert, key, ca] = await Promise.all([readFile(config.tls.cert), readFile(config.tls.key), readFile(config.tls.ca)]);
  return { cert, key, ca };
}

/** a monotonic instant (performance.now()) as wall-clock ms */
function wallClock(mono: number): number {
  return Math.round(Date.now() - (performance.now() - mono));
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * One Warren node of a cluster (docs/clustering.md). It always listens for AMQP and on its
 * cluster port. As a follower it applies the leader's records to its store and proxies
 * AMQP connections to the leader; when elected it recovers the replicated store and serves
 * them itself. Losing the lease (deadline), being fenced, or seeing a newer term makes it
 * close its connections with 320 and become a follower again.
 */
export class ClusterNode {
  private nodeId = '';
  private coordinator!: EtcdCoordinator;
  private log!: OpLog;
  private tls: ClusterTls | null = null;
  private clusterServer!: ClusterServer;
  private amqpServer: Server | null = null;
  private amqpPort = 0;
  private clusterPort = 0;
  private role: NodeRole = 'starting';
  /** follower state */
  private followerDb: Db | null = null;
  private follower: ReplicationFollower | null = null;
  /** leader state */
  private leader: ReplicationLeader | null = null;
  private store: ReplicatedLevelStore | null = null;
  private broker: Broker | null = null;
  private transitions: Promise<void> = Promise.resolve();
  private closed = false;
  private campaignRetry: NodeJS.Timeout | null = null;
  /** re-checks the candidacy every CAMPAIGN_RETRY_MS (see considerCampaign) */
  private campaignCheck: NodeJS.Timeout | null = null;
  /** client connections this node forwards to the leader */
  private proxies!: ClientProxy;
  /** set while promote() runs: connections arriving meanwhile are held for the broker (HOLD_MS) */
  private promoting = false;
  private readonly held = new Set<HeldConnection>();
  private readonly cluster: ClusterConfig;
  private readonly dataDir: string;
  /** the data dir's lock (store/dir-lock.ts), held from the start to the end of close, whatever the role */
  private dirLock: DirLock | null = null;

  constructor(
    private readonly config: WarrenConfig,
    private readonly logger: Logger,
  ) {
    if (config.cluster === null) throw new Error('ClusterNode needs a cluster configuration');
    if (config.dataDir === null) throw new Error('a cluster node needs a data directory');
    this.cluster = config.cluster;
    this.dataDir = config.dataDir;
  }

  async start(): Promise<RunningClusterNode> {
    // the data dir's lock before anything reads or writes it, as a single node's store takes
    // it; held through every role change (the stores opened meanwhile take none of their own)
    // until close(): a second process on the same data dir is refused here
    try {
      await mkdir(this.dataDir, { recursive: true });
    } catch (e) {
      throw new StoreError(`cannot create data directory ${this.dataDir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const lock = await lockDataDir(this.dataDir);
    this.dirLock = lock;
    try {
      return await this.startLocked();
    } catch (err) {
      this.dirLock = null;
      await lock.release().catch(() => {});
      throw err;
    }
  }

  private async startLocked(): Promise<RunningClusterNode> {
    const c = this.cluster;
    // the store first: the data dir must be a valid store before anything else goes into it
    const init = new LevelStore(this.dataDir, this.logger.child({ component: 'store' }), { lockHeld: true });
    await init.open();
    await init.close();
    const clusterDir = join(this.dataDir, 'cluster');
    await mkdir(clusterDir, { recursive: true });
    this.nodeId = await resolveNodeId(clusterDir, c.nodeId, this.logger);
    this.tls = await readTls(c);
    this.log = new OpLog(join(clusterDir, 'log'));
    await this.log.open();
    this.logger.info({ nodeId: this.nodeId, applied: this.log.applied, last: this.log.lastPosition }, 'cluster: node starting');

    this.clusterServer = new ClusterServer({
      host: this.config.host,
      port: c.port,
      tls: this.tls,
      secret: () => this.coordinator.secret,
      self: () => ({ nodeId: this.nodeId, term: this.leader?.term ?? 0 }),
      onLink: (purpose, socket, nodeId, rest) => this.onLink(purpose, socket, nodeId, rest),
      logger: this.logger,
    });
    this.proxies = new ClientProxy({
      selfId: this.nodeId,
      leader: () => this.coordinator?.currentLeader() ?? null,
      dial: (leader) => {
        const upstream = dialCluster(this.tls)(leader.cluster);
        return { upstream, ready: connectHandshake(upstream, this.coordinator.secret, this.nodeId, Purpose.Proxy).then((r) => r.rest) };
      },
      servesLocally: () => (this.role === 'leader' && this.broker !== null) || this.promoting,
      serveLocally: (client, head) => this.serveLocally(client, head),
      waitMs: c.leaseTtl * 1000 + PROXY_WAIT_MARGIN_MS,
      maxBuffered: PROXY_MAX_BUFFERED,
      maxPending: PROXY_MAX_PENDING,
      retryMs: PROXY_RETRY_MS,
      lingerMs: PROXY_LINGER_MS,
      logger: this.logger,
    });
    try {
      this.clusterPort = await this.clusterServer.listen();
      this.amqpServer = await listen(this.config.host, this.config.port, (socket) => this.onAmqp(socket));
    } catch (err) {
      // neither port stays open for a node that cannot start (one listening, the other in use)
      await this.shutdownListeners();
      await this.log.close();
      throw err;
    }
    const addr = this.amqpServer.address();
    this.amqpPort = typeof addr === 'object' && addr !== null ? addr.port : this.config.port;

    this.coordinator = new EtcdCoordinator({
      endpoints: c.etcd,
      clusterName: c.name,
      nodeId: this.nodeId,
      candidate: { id: this.nodeId, amqp: hostPort(c.advertise, this.amqpPort), cluster: hostPort(c.advertise, this.clusterPort) },
      leaseTtl: c.leaseTtl,
      keepaliveMs: DEFAULT_KEEPALIVE_MS,
      marginMs: DEFAULT_MARGIN_MS,
      logger: this.logger,
    });
    try {
      await this.coordinator.start();
    } catch (err) {
      await this.shutdownListeners();
      await this.log.close();
      throw new Error(`cannot reach etcd at ${c.etcd.join(',')}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    await this.becomeFollower();
    this.coordinator.on('leader', (l: LeaderInfo | null) => this.onLeader(l));
    this.coordinator.on('isr', () => this.considerCampaign());
    this.coordinator.on('elected', (term: number) => this.transition(() => this.promote(term)));
    this.coordinator.on('expired', () => {
      const deadlineAt = wallClock(this.coordinator.leaseDeadline);
      if (this.role === 'leader' || this.leader !== null) this.transition(() => this.stepDown('lease deadline passed', deadlineAt));
    });
    this.coordinator.on('lease-renewed', () => this.considerCampaign());
    this.onLeader(this.coordinator.currentLeader());
    this.considerCampaign();
    // eligibility also changes without an event: a follower's snapshot install ends, or the
    // ISR event came while it was still syncing (it withdrew then). A follower that may lead
    // and has no candidacy would otherwise wait for the next ISR change or lease, and with
    // every other candidate gone the cluster stayed leaderless (seen in the full fault run).
    // Cheap: campaign() and resign() return at once when there is nothing to change.
    this.campaignCheck = setInterval(() => {
      try {
        this.considerCampaign();
      } catch (err) {
        this.logger.warn({ err }, 'cluster: candidacy check failed (contained)');
      }
    }, CAMPAIGN_RETRY_MS);
    this.campaignCheck.unref();
    const urlHost = c.advertise.includes(':') ? `[${c.advertise}]` : c.advertise;
    return {
      url: `amqp://guest:guest@${urlHost}:${this.amqpPort}`,
      host: this.config.host,
      port: this.amqpPort,
      nodeId: this.nodeId,
      status: () => this.status(),
      admin: () => (this.role === 'leader' ? (this.broker?.admin ?? null) : null),
      close: (reason?: string) => this.close(reason),
    };
  }

  private transition(step: () => Promise<void>): void {
    this.transitions = this.transitions.then(step).catch((err: unknown) => {
      this.logger.error({ err }, 'cluster: role change failed');
    });
  }

  // ------------------------------------------------------------------ roles

  private async becomeFollower(): Promise<void> {
    // the follower writes the store directly: a clean-shutdown record (counts of what the
    // store held when a LevelStore last closed it) would not match what is applied now
    await rm(join(this.dataDir, CLEAN_SHUTDOWN_FILE), { force: true });
    // with the store's own options: this handle becomes the leader's store on promotion (LevelStore.openOn)
    const db: Db = await LevelStore.openLevel(this.dataDir);
    this.followerDb = db;
    this.follower = new ReplicationFollower({
      log: this.log,
      target: new LevelApplyTarget(db),
      nodeId: this.nodeId,
      secret: () => this.coordinator.secret,
      dial: dialCluster(this.tls),
      logger: this.logger,
    });
    this.role = 'follower';
    await this.register();
  }

  private async register(): Promise<void> {
    const c = this.cluster;
    await this.coordinator
      .register({ id: this.nodeId, amqp: hostPort(c.advertise, this.amqpPort), cluster: hostPort(c.advertise, this.clusterPort), role: this.role })
      .catch((err) => this.logger.warn({ err }, 'cluster: cannot update the node registry'));
  }

  private onLeader(leader: LeaderInfo | null): void {
    if (this.closed) return;
    this.logger.info({ leader: leader?.id ?? null, term: leader?.term ?? null }, 'cluster: leader changed');
    if (this.leader !== null && leader !== null && leader.id !== this.nodeId && leader.term > this.leader.term) {
      this.transition(() => this.stepDown(`a newer leader (${leader.id}, term ${leader.term}) exists`));
      return;
    }
    // connections forwarded to a leader that is gone (or paused, or cut off) cannot be served
    // any more: close them now so their clients reconnect at once rather than after heartbeats;
    // those the old leader never answered go to the next one instead (client-proxy.ts)
    this.proxies.leaderChanged(leader);
    if (leader === null || leader.id === this.nodeId) this.follower?.follow(null);
    else this.follower?.follow({ id: leader.id, cluster: leader.cluster, term: leader.term });
    // no leader: every node that may lead stands (one without a candidacy would not otherwise)
    if (leader === null) this.considerCampaign();
  }

  /** only ISR members (or anyone, in a cluster that never had a leader) may lead */
  private eligible(isr: IsrRecord | null): boolean {
    if (this.log.syncing) return false;
    return isr === null || isr.members.includes(this.nodeId);
  }

  private considerCampaign(): void {
    if (this.closed || this.role !== 'follower') return;
    if (this.eligible(this.coordinator.currentIsr())) {
      void this.coordinator.campaign().catch((err) => {
        this.logger.warn({ err }, 'cluster: cannot campaign; will retry');
        // nothing else may come to trigger it (a stable ISR, a lease that lives): retry on a timer
        if (this.campaignRetry === null && !this.closed) {
          this.campaignRetry = setTimeout(() => {
            this.campaignRetry = null;
            this.considerCampaign();
          }, CAMPAIGN_RETRY_MS);
          this.campaignRetry.unref();
        }
      });
    } else if (!this.coordinator.isLeader()) {
      if (this.coordinator.term !== 0) this.logger.info({ syncing: this.log.syncing, isr: this.coordinator.currentIsr()?.members ?? null }, 'cluster: not eligible to lead; candidacy withdrawn');
      void this.coordinator.resign();
    }
  }

  private async promote(term: number): Promise<void> {
    if (this.closed || this.role !== 'follower' || !this.coordinator.isLeader() || this.coordinator.term !== term) return;
    // after the election no one else can write the ISR (the previous leader's key is gone): read it fresh
    let isr: IsrRecord | null;
    try {
      isr = await this.coordinator.readIsr();
    } catch (err) {
      this.logger.warn({ err }, 'cluster: cannot read the ISR after the election; resigning');
      await this.coordinator.resign();
      this.considerCampaign();
      return;
    }
    if (!this.coordinator.isLeader() || this.coordinator.term !== term) return;
    if (!this.eligible(isr)) {
      this.logger.warn({ isr }, 'cluster: elected but not in the ISR; resigning');
      await this.coordinator.resign();
      return;
    }
    const started = performance.now();
    this.role = 'starting';
    this.logger.info({ term }, 'cluster: promoting to leader');
    await this.follower?.stop();
    this.follower = null;
    // the follower's LevelDB, open and written by this process until now, becomes the store's
    const db = this.followerDb;
    this.followerDb = null;
    this.promoting = true;
    // clients waiting for a leader are held here from now on
    this.proxies.wake();
    try {
      const store = new ReplicatedLevelStore(this.dataDir, this.logger.child({ component: 'store' }), { forceRecovery: this.config.forceRecovery, lockHeld: true });
      this.store = store;
      if (db !== null) {
        await store.openOn(db).catch(async (err: unknown) => {
          if (db.status === 'open') await db.close().catch(() => {}); // refused before the store took it
          throw err;
        });
      } else await store.open();
      const leader = new ReplicationLeader({
        log: this.log,
        // through the store, never a handle kept from now: the store may reopen its LevelDB
        target: new LevelApplyTarget(store),
        nodeId: this.nodeId,
        term,
        gate: { canCommit: () => this.coordinator.isLeader() && this.coordinator.term === term, writeIsr: (m) => this.coordinator.writeIsr(m) },
        minInsync: this.cluster.minInsync,
        followerAckTimeoutMs: this.cluster.followerAckTimeout,
        retainRecords: RETAIN_RECORDS,
        logger: this.logger,
      });
      this.leader = leader;
      store.replicator = leader;
      leader.on('fenced', () => this.transition(() => this.stepDown('fenced out by etcd')));
      leader.on('failed', () => this.transition(() => this.stepDown('local write failed')));
      // the previous leader is gone (its lease expired): it rejoins the ISR after catching up
      const members = (isr?.members ?? []).filter((m) => m === this.nodeId || m !== isr?.leader);
      this.logger.info({ term, ms: Math.round(performance.now() - started) }, 'cluster: store open; starting replication');
      await leader.start(members);
      this.logger.info({ term, ms: Math.round(performance.now() - started) }, 'cluster: term started on the ISR');
      const broker = new Broker(this.config, this.logger, store);
      broker.clusterStatusSource = () => this.status();
      this.broker = broker;
      await broker.start({ listen: false });
      this.role = 'leader';
      this.logger.info({ term, ms: Math.round(performance.now() - started), isr: leader.status().isr, held: this.held.size }, 'cluster: leader open for traffic');
      this.releaseHeld(broker);
      await this.register();
    } catch (err) {
      this.logger.error({ err }, 'cluster: promotion failed');
      this.releaseHeld(null);
      await this.stepDown('promotion failed');
    } finally {
      this.promoting = false;
      this.releaseHeld(null); // closed meanwhile, or stepped down
    }
  }

  /** keeps a client connection that arrived during the promotion for the broker it opens */
  private hold(socket: Duplex, address: string | undefined, port: number | undefined): void {
    if (this.held.size >= HOLD_MAX) {
      socket.destroy();
      return;
    }
    socket.pause();
    const h: HeldConnection = { socket, address, port };
    this.held.add(h);
    const timer = setTimeout(() => {
      if (this.held.delete(h)) socket.destroy();
    }, HOLD_MS);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      this.held.delete(h);
    });
  }

  /** hands the held connections to the broker now open, or closes them (null: promotion failed) */
  private releaseHeld(broker: Broker | null): void {
    const held = [...this.held];
    this.held.clear();
    for (const h of held) {
      if (broker === null || h.socket.destroyed) {
        h.socket.destroy();
        continue;
      }
      broker.adopt(h.socket, h.address, h.port);
      h.socket.resume();
    }
  }

  private async stepDown(reason: string, deadlineAt = wallClock(Math.min(performance.now(), this.coordinator.leaseDeadline))): Promise<void> {
    if (this.leader === null && this.store === null) return;
    // deadlineAt: when this leader stopped confirming at the latest (the harness checks that terms never overlap)
    this.logger.warn({ reason, term: this.leader?.term, deadlineAt }, 'cluster: stepping down');
    this.role = 'starting';
    // first: nothing more commits, no confirm goes out
    this.leader?.stop();
    this.leader = null;
    const broker = this.broker;
    this.broker = null;
    if (broker !== null) await broker.stopServing(reason).catch((err) => this.logger.warn({ err }, 'cluster: closing connections failed'));
    this.proxies.dropSpliced();
    // writes still in the store fail with NotLeaderError; let them settle, then close it
    await new Promise((r) => setImmediate(r));
    const store = this.store;
    this.store = null;
    if (store !== null) await store.close().catch(() => {});
    await this.coordinator.resign();
    if (this.closed) return;
    await this.becomeFollower();
    this.onLeader(this.coordinator.currentLeader());
    this.considerCampaign();
  }

  // ------------------------------------------------------------------ connections

  private onLink(purpose: PurposeCode, socket: Duplex, nodeId: string, rest: Buffer): void {
    if (purpose === Purpose.Replicate) {
      if (this.leader === null) socket.destroy();
      else this.leader.attach(socket, nodeId, rest);
      return;
    }
    // a peer proxies a client's AMQP connection: PROXY v1 header, then the client's bytes
    let buf = rest;
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      tryParse();
    };
    const tryParse = (): void => {
      let parsed;
      try {
        parsed = parseProxyV1(buf);
      } catch {
        socket.destroy();
        return;
      }
      if (parsed === null) return;
      socket.off('data', onData);
      socket.pause();
      const broker = this.broker;
      const remaining = buf.subarray(parsed.length);
      if (broker === null || this.role !== 'leader') {
        if (!this.promoting) {
          socket.destroy();
          return;
        }
        if (remaining.length > 0) socket.unshift(remaining);
        this.hold(socket, parsed.peer.address, parsed.peer.port);
        return;
      }
      if (remaining.length > 0) socket.unshift(remaining);
      broker.adopt(socket, parsed.peer.address, parsed.peer.port);
      socket.resume();
    };
    socket.on('data', onData);
    if (rest.length > 0) tryParse();
  }

  private onAmqp(socket: Socket): void {
    socket.on('error', () => {});
    if (this.role === 'leader' && this.broker !== null) {
      this.broker.adopt(socket, socket.remoteAddress, socket.remotePort);
      return;
    }
    if (this.promoting) {
      this.hold(socket, socket.remoteAddress, socket.remotePort);
      return;
    }
    // to the leader, or to the next one if that one fails before it answers (client-proxy.ts)
    this.proxies.accept(socket);
  }

  /** a client that waited for a leader is served by this node, which leads now or is being promoted */
  private serveLocally(client: Socket, head: Buffer): void {
    client.pause();
    if (head.length > 0) client.unshift(head);
    if (this.role === 'leader' && this.broker !== null) {
      this.broker.adopt(client, client.remoteAddress, client.remotePort);
      client.resume();
    } else this.hold(client, client.remoteAddress, client.remotePort);
  }

  // ------------------------------------------------------------------ status, close

  status(): ClusterNodeStatus {
    const replication = this.leader?.status() ?? this.follower?.status() ?? null;
    const isr = this.coordinator?.currentIsr() ?? null;
    const lag =
      replication === null ? 0 : replication.role === 'leader' ? Math.max(0, ...replication.followers.map((f) => f.lag)) : replication.lag;
    const leader = this.coordinator?.currentLeader() ?? null;
    return {
      nodeId: this.nodeId,
      role: this.role,
      term: leader?.term ?? null,
      leader: leader?.id ?? null,
      isr: isr?.members ?? [],
      lag,
      replication,
    };
  }

  private async shutdownListeners(): Promise<void> {
    const amqp = this.amqpServer;
    this.amqpServer = null;
    this.proxies?.close();
    this.releaseHeld(null);
    await Promise.all([amqp === null ? undefined : new Promise<void>((r) => amqp.close(() => r())), this.clusterServer.close()]);
  }

  async close(reason = 'shutdown'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.campaignRetry !== null) clearTimeout(this.campaignRetry);
    this.campaignRetry = null;
    if (this.campaignCheck !== null) clearInterval(this.campaignCheck);
    this.campaignCheck = null;
    await this.transitions;
    if (this.broker !== null) {
      // a clean shutdown: the leader's pending writes still reach the ISR
      await this.broker.close(reason).catch((err) => this.logger.warn({ err }, 'cluster: broker close failed'));
      this.broker = null;
      this.store = null;
    }
    this.leader?.stop();
    this.leader = null;
    await this.follower?.stop();
    await this.followerDb?.close();
    await this.shutdownListeners();
    await this.coordinator.close();
    await this.log.close();
    const lock = this.dirLock;
    this.dirLock = null;
    await lock?.release();
  }
}

export async function startClusterNode(config: WarrenConfig, logger: Logger): Promise<RunningClusterNode> {
  return new ClusterNode(config, logger).start();
}
