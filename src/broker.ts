import type { Server, Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { AmqpChannelError } from './protocol/errors.js';
import type { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { resolveConfig, type WarrenConfig } from './config/config.js';
import type { BrokerContext } from './connection/broker-context.js';
import { Connection } from './connection/connection.js';
import { createLogger } from './logging/logger.js';
import { serverProperties } from './connection/server-properties.js';
import { MemoryStore } from './store/memory-store.js';
import { LevelStore } from './store/level-store.js';
import type { Store } from './store/store.js';
import { QueueStorage } from './queue/queue-storage.js';
import { MemoryBudget } from './queue/memory-budget.js';
import type { ExchangeType } from './vhost/exchange.js';
import { DELAY_QUEUE_PREFIX } from './delayed/delayed-exchange.js';
import { ResourceMonitor, availableMemory, type AlarmEvent } from './alarms/resource-monitor.js';
import { listen, type SharedReadInput } from './transport/listener.js';
import { listenTls } from './transport/tls-listener.js';
import { certificateLoginName } from './auth/cert-login.js';
import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { BrokerAdmin } from './operations/broker-admin.js';
import { Core } from './operations/core.js';
import { hashPassword } from './auth/password-hash.js';
import type { Channel } from './connection/channel.js';
import type { BrokerView, ClusterStatusView, Listener, ResourceStatus } from './monitoring/broker-view.js';
import { StatsSampler } from './monitoring/sampler.js';
import { startManagementServer, type HttpServer } from './management/server.js';
import { startMetricsServer } from './metrics/server.js';
import { BusyPoll } from './transport/busy-poll.js';

const pkg = createRequire(import.meta.url)('../package.json') as { version: string };
export const WARREN_VERSION: string = pkg.version;

export interface BrokerOptions extends Partial<WarrenConfig> {
  logger?: Logger;
}

export interface RunningBroker {
  /** amqp://guest:guest@host:port of the plain listener (the amqps URL when it is disabled) */
  readonly url: string;
  readonly host: string;
  /** the plain listener's port (null with --no-plain) */
  readonly port: number;
  /** amqps://host:tlsPort, or null without a TLS listener */
  readonly tlsUrl: string | null;
  readonly tlsPort: number | null;
  /** users, vhosts, permissions and limits (what the management API will call too) */
  readonly admin: BrokerAdmin;
  /** the management API / dashboard port, or null when it is off */
  readonly managementPort: number | null;
  /** the Prometheus metrics port, or null when it is off */
  readonly metricsPort: number | null;
  /** closes every client connection with 320 CONNECTION_FORCED, stops listening, closes the store */
  close(reason?: string): Promise<void>;
}

const TICK_MS = 1000;
function brokerTick(broker: Broker): void {
  try {
    broker.tick();
  } catch (err) {
    broker.logger.error({ err }, 'internal error in the broker tick (contained)');
  }
}

function statsTick(broker: Broker): void {
  try {
    const now = Date.now();
    broker.sampler.tick(now);
    broker.core.rpc.tick(now);
  } catch (err) {
    broker.logger.error({ err }, 'internal error in the stats tick (contained)');
  }
}

/** RabbitMQ's node name form (tools ask for /api/nodes/rabbit@<short host name>). */
function defaultNodeName(): string {
  return `rabbit@${hostname().split('.')[0] || 'localhost'}`;
}

const MiB = 1024 * 1024;
/** RabbitMQ's vm_memory_high_watermark_paging_ratio default: paging starts at half the watermark */
const PAGING_RATIO = 0.5;
/**
 * The automatic budget's ceiling. Node holds a queued message as JS objects (about 400 bytes
 * besides the body, counted in the budget); paged-out ones are old garbage until the next
 * full GC (the executable sets V8's heap growth to 1.5x, see cli/main.ts), so at peak the
 * process holds up to about twice what the budget counts, plus the store's write-behind (up
 * to 4 MiB of durable batches and 64 MiB of spill writes, flow control holds publishers past
 * that). 96 MiB keeps a broker holding a 1M-message backlog of 16 B bodies near 310 MiB of
 * RSS (305–309 MiB in three runs; 351–366 with 128 MiB, at the same fill and drain rates),
 * while a backlog of about 240,000 small messages stays in memory; a smaller budget pages
 * more and reads back more (the drain of a deep backlog gets slower and churns more garbage).
 */
const AUTO_BUDGET_CAP = 96 * MiB;

/** The broker-wide memory budget for ready messages in queues (config.queueMemoryBudget). */
export function queueMemoryBudget(config: Pick<WarrenConfig, 'memoryHighWatermark' | 'queueMemoryBudget'>, total = availableMemory()): number {
  const mem = config.memoryHighWatermark;
  const watermark = mem === 0 ? total : mem <= 1 ? mem * total : mem;
  const b = config.queueMemoryBudget;
  if (b > 1) return Math.floor(b);
  if (b > 0) return Math.floor(b * watermark);
  return Math.floor(Math.min(PAGING_RATIO * watermark, AUTO_BUDGET_CAP));
}

/** Composition root: config, logger, store, vhosts, listener. No protocol logic. */
export class Broker implements BrokerContext, BrokerView {
  readonly config: WarrenConfig;
  readonly version = WARREN_VERSION;
  readonly nodeName = defaultNodeName();
  readonly startedAt = Date.now();
  readonly sampler: StatsSampler;
  private statsTimer: NodeJS.Timeout | null = null;
  private readonly httpServers: HttpServer[] = [];
  private managementPort: number | null = null;
  private metricsPort: number | null = null;
  readonly logger: Logger;
  readonly core: Core;
  readonly admin: BrokerAdmin;
  readonly serverProperties = serverProperties(WARREN_VERSION);
  private readonly connections = new Map<number, Connection>();
  readonly store: Store;
  private readonly storage: QueueStorage;
  /** the broker-wide memory budget for ready messages held in queues */
  readonly budget: MemoryBudget;
  readonly busyPoll: BusyPoll;
  private server: Server | null = null;
  private tlsServer: Server | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private readonly monitor: ResourceMonitor | null;
  blockedReason: string | null = null;

  /** store and monitor are injectable for tests; by default they follow the config */
  constructor(config: WarrenConfig, logger: Logger, store?: Store, monitor?: ResourceMonitor | null) {
    this.config = config;
    this.logger = logger;
    this.store = store ?? (config.dataDir === null ? new MemoryStore() : new LevelStore(config.dataDir, logger.child({ component: 'store' }), { forceRecovery: config.forceRecovery }));
    // with a data dir, queues page their backlogs out of memory when the budget says so
    this.budget = new MemoryBudget(queueMemoryBudget(config));
    this.busyPoll = new BusyPoll(config.busyPoll);
    this.storage = new QueueStorage(this.store, config.dataDir !== null, this.budget, config.queueMemoryWindow);
    this.core = new Core({ store: this.store, storage: this.storage, logger, loopbackUsers: config.loopbackUsers });
    this.admin = new BrokerAdmin(this.core);
    this.sampler = new StatsSampler(
      { vhosts: () => this.vhosts.values(), connections: () => this.connections.values() },
      config.statsInterval,
    );
    const { memoryHighWatermark: mem, diskFreeLimit: disk } = config;
    this.monitor =
      monitor !== undefined
        ? monitor
        : mem === 0 && disk === 0
        ? null
        : new ResourceMonitor({
            memoryHighWatermark: mem === 0 ? { absolute: Number.MAX_SAFE_INTEGER } : mem <= 1 ? mem : { absolute: mem },
            diskFreeLimit: disk,
            dataDir: disk === 0 ? null : config.dataDir,
            inFlight: disk === 0 ? null : (this.store.writeMeter ?? null),
          });
  }

  /** A resource alarm was set or cleared: block or unblock publishing connections. */
  private onAlarm(event: AlarmEvent): void {
    const monitor = this.monitor!;
    this.blockedReason = monitor.blocked ? monitor.blockedReason() : null;
    this.logger.warn(
      { resource: event.resource, set: event.set, memoryUsed: monitor.lastMemoryUsed, diskFree: monitor.lastDiskFree },
      event.set ? 'resource alarm set: blocking publishers' : 'resource alarm cleared',
    );
    for (const c of this.connections.values()) c.alarmChanged(this.blockedReason);
  }

  /**
   * Opens the store, recovers, and listens on config.host:port. With `listen: false` the
   * caller owns the AMQP listener and hands sockets over with adopt() (a cluster leader does);
   * the management and metrics ports are then opened if they can be, and a failure to open
   * them is logged rather than failing the start (a node must not refuse leadership over them).
   */
  async start(options: { listen?: boolean } = {}): Promise<RunningBroker> {
    await this.store.open();
    try {
      await this.recover();
      if (this.config.definitions !== null) await this.loadDefinitions(this.config.definitions);
      if (options.listen !== false) await this.listen();
      this.tickTimer = setInterval(brokerTick, TICK_MS, this);
      this.tickTimer.unref();
      this.sampler.tick();
      this.statsTimer = setInterval(statsTick, this.config.statsInterval, this);
      this.statsTimer.unref();
      if (options.listen !== false) await this.startHttp();
      else await this.startHttp().catch((err: unknown) => this.logger.error({ err }, 'management or metrics port could not be opened; serving AMQP without it'));
      if (this.monitor !== null) {
        this.monitor.on('alarm', (e) => {
          try {
            this.onAlarm(e);
          } catch (err) {
            this.logger.error({ err, alarm: e }, 'internal error handling a resource alarm (contained)');
          }
        });
        this.monitor.on('check-error', (err) => this.logger.warn({ err }, 'resource check failed'));
        await this.monitor.checkNow();
        this.monitor.start();
      }
    } catch (err) {
      await this.stopHttp();
      if (this.statsTimer !== null) clearInterval(this.statsTimer);
      if (this.tickTimer !== null) clearInterval(this.tickTimer);
      this.monitor?.stop();
      for (const s of [this.server, this.tlsServer]) s?.close();
      await this.store.close().catch(() => {});
      throw err;
    }
    return this.running();
  }

  /** The management API and the metrics endpoint, each on its own port (when not off). */
  private async startHttp(): Promise<void> {
    const { managementPort, metricsPort, host } = this.config;
    if (managementPort !== null) {
      const s = await startManagementServer(this, this.logger.child({ component: 'management' }), host, managementPort);
      this.httpServers.push(s);
      this.managementPort = s.port;
      this.logger.info({ port: s.port }, 'management API and dashboard listening');
    }
    if (metricsPort !== null) {
      const s = await startMetricsServer(this, this.logger.child({ component: 'metrics' }), host, metricsPort);
      this.httpServers.push(s);
      this.metricsPort = s.port;
      this.logger.info({ port: s.port }, 'Prometheus metrics listening');
    }
  }

  private async stopHttp(): Promise<void> {
    const servers = this.httpServers.splice(0);
    await Promise.all(servers.map((s) => s.close().catch(() => {})));
  }

  // ---- BrokerView (management API, dashboard, metrics) ------------------------------------

  connectionList(): Iterable<Connection> {
    return this.connections.values();
  }

  listeners(): readonly Listener[] {
    const ip = this.config.host;
    const list: Listener[] = [];
    for (const [server, protocol] of [[this.server, 'amqp'], [this.tlsServer, 'amqp/ssl']] as const) {
      const address = server?.address();
      if (typeof address === 'object' && address !== null) list.push({ protocol, ip, port: address.port });
    }
    if (this.managementPort !== null) list.push({ protocol: 'http', ip, port: this.managementPort });
    if (this.metricsPort !== null) list.push({ protocol: 'http/prometheus', ip, port: this.metricsPort });
    return list;
  }

  /** set by a cluster node (cluster-node.ts) to its status; null on a single node */
  clusterStatusSource: (() => ClusterStatusView) | null = null;

  clusterStatus(): ClusterStatusView | null {
    return this.clusterStatusSource?.() ?? null;
  }

  resources(): ResourceStatus {
    const m = this.monitor;
    return {
      memoryUsed: m !== null ? m.lastMemoryUsed : process.memoryUsage.rss(),
      memoryLimit: m !== null ? m.memoryLimit : 0,
      memoryAlarm: m?.memoryAlarm ?? false,
      diskFree: m !== null && Number.isFinite(m.lastDiskFree) ? m.lastDiskFree : -1,
      diskFreeLimit: m !== null ? m.diskFreeLimit : 0,
      diskAlarm: m?.diskAlarm ?? false,
    };
  }

  private vhost(name: string) {
    return this.core.vhostObject(name);
  }

  get vhosts() {
    return this.core.vhosts;
  }

  /**
   * RabbitMQ on a new database: the default vhosts and the default user (guest, or
   * --default-user) with the administrator tag and full permissions on them. Done once: a
   * marker in the store keeps deleted users and vhosts deleted. A store upgraded from
   * format 1 (no users yet) gets the default user with full permissions on every vhost it
   * holds, which is what format 1 allowed.
   */
  private seedDefaults(): void {
    const access = this.core.access;
    const { username, password } = this.config.defaultUser;
    if (access.seeded) {
      if (!access.users.has(username) && username !== 'guest') {
        this.logger.warn({ user: username }, 'default user not created: the store already has its users (the default user is only created in a new store)');
      }
      return;
    }
    for (const name of this.config.vhosts) {
      if (!this.vhosts.has(name)) {
        this.vhost(name);
        this.store.putVhost(name);
      }
    }
    if (!access.users.has(username)) {
      access.putUser({ name: username, passwordHash: hashPassword(password), hashingAlgorithm: 'rabbit_password_hashing_sha256', tags: ['administrator'] });
    }
    for (const vhost of this.vhosts.keys()) {
      if (access.permission(username, vhost) === undefined) access.setPermission({ user: username, vhost, configure: '.*', write: '.*', read: '.*' });
    }
    access.markSeeded();
  }

  /**
   * Rebuilds durable topology and queue indexes from the store. Exclusive and
   * non-durable things were never written; transient messages are dropped by the
   * store's recovery; entries that were unacked come back ready (redelivered).
   */
  private async recover(): Promise<void> {
    const started = Date.now();
    const topology = await this.store.loadTopology();
    const info = await this.store.recover();
    for (const name of topology.vhosts) this.vhost(name);
    await this.core.restoreAccess();
    this.seedDefaults();
    for (const v of this.vhosts.values()) v.recovering = true;
    try {
      for (const x of topology.exchanges) {
        this.vhost(x.vhost).declareExchange(x.name, x.type as ExchangeType, {
          durable: true,
          autoDelete: x.autoDelete,
          internal: x.internal,
          arguments: x.arguments,
        });
      }
      for (const q of topology.queues) {
        if (q.name.startsWith(DELAY_QUEUE_PREFIX)) continue; // a delayed exchange's store, attached below
        this.vhost(q.vhost).declareQueue(
          q.name,
          { durable: true, autoDelete: q.autoDelete, exclusiveOwner: null, arguments: q.arguments },
          q.id,
        );
      }
      for (const b of topology.bindings) {
        const v = this.vhost(b.vhost);
        const source = v.exchanges.get(b.source);
        const dest = b.destinationKind === 'queue' ? v.findQueue(b.destination) : v.exchanges.get(b.destination);
        if (source !== undefined && dest !== undefined) v.bind(source, dest, b.routingKey, b.arguments);
      }
    } finally {
      for (const v of this.vhosts.values()) v.recovering = false;
    }
    // policies apply to the recovered queues and exchanges
    await this.core.policies.restore();
    const byId = new Map<number, import('./queue/queue.js').Queue>();
    for (const v of this.vhosts.values()) for (const q of v.queues.values()) if (q.storesPersistent) byId.set(q.id, q);
    let messages = 0;
    const loads: Promise<void>[] = [];
    for (const summary of info.queues) {
      const q = byId.get(summary.queueId);
      if (q === undefined || summary.count === 0) continue;
      messages += summary.count;
      loads.push(q.restore(summary));
    }
    for (const q of topology.queues) {
      if (q.name.startsWith(DELAY_QUEUE_PREFIX)) {
        loads.push(this.vhost(q.vhost).restoreDelayed(q.name.slice(DELAY_QUEUE_PREFIX.length), q.id).then(() => {}));
      }
    }
    await Promise.all(loads);
    await this.store.flush();
    if (topology.queues.length > 0 || messages > 0) {
      this.logger.info(
        { exchanges: topology.exchanges.length, queues: topology.queues.length, bindings: topology.bindings.length, messages, ms: Date.now() - started },
        'recovered durable state',
      );
    }
  }

  /** RabbitMQ's load_definitions: a file of definitions imported at every start (create or update). */
  private async loadDefinitions(file: string): Promise<void> {
    let defs: unknown;
    try {
      defs = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read definitions from ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const report = await this.admin.importDefinitions(defs);
      this.logger.info({ file, ...report, skipped: report.skipped.length }, 'definitions imported');
      if (report.skipped.length > 0) this.logger.warn({ file, skipped: report.skipped }, 'definitions not imported (not supported yet)');
    } catch (err) {
      const text = err instanceof AmqpChannelError ? err.replyText : (err as Error).message;
      throw new Error(`definitions in ${file} could not be imported: ${text}`, { cause: err });
    }
  }

  private async listen(): Promise<void> {
    const c = this.config;
    if (!c.plain && c.tlsPort === null) throw new Error('no listener: the plain listener is disabled and no TLS port is set');
    if (c.tlsPort !== null) {
      if (c.tlsCert === null || c.tlsKey === null) throw new Error('the TLS listener needs a certificate and a key (--tls-cert, --tls-key)');
      this.tlsServer = await listenTls(
        c.host,
        c.tlsPort,
        {
          certFile: c.tlsCert,
          keyFile: c.tlsKey,
          caFile: c.tlsCa,
          verifyPeer: c.tlsVerifyPeer,
          failIfNoPeerCert: c.tlsFailIfNoPeerCert,
          handshakeTimeout: c.tlsHandshakeTimeout,
        },
        (socket, cert) => this.acceptTls(socket, cert),
        (err, peer) => this.logger.info({ peer, reason: err.message }, 'TLS handshake failed'),
      );
      this.tlsServer.on('error', (err) => this.logger.error({ err }, 'TLS listener error'));
    }
    if (c.plain) {
      try {
        this.server = await listen(c.host, c.port, (socket, input) => this.accept(socket, input), { sharedReads: true });
        // e.g. EMFILE on accept: logged, the listener keeps going (an 'error' without a listener would throw)
        this.server.on('error', (err) => this.logger.error({ err }, 'listener error'));
      } catch (err) {
        const tls = this.tlsServer;
        this.tlsServer = null;
        tls?.close();
        throw err;
      }
    }
  }

  private running(): RunningBroker {
    const portOf = (server: Server | null): number | null => {
      const address = server?.address();
      return typeof address === 'object' && address !== null ? address.port : null;
    };
    const port = portOf(this.server) ?? (this.server === null && this.tlsServer === null ? this.config.port : null);
    const tlsPort = portOf(this.tlsServer);
    const host = this.config.host;
    const urlHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
    const tlsUrl = tlsPort === null ? null : `amqps://guest:guest@${urlHost}:${tlsPort}`;
    return {
      url: port === null ? tlsUrl! : `amqp://guest:guest@${urlHost}:${port}`,
      host,
      port: port ?? tlsPort!,
      tlsUrl,
      tlsPort,
      admin: this.admin,
      managementPort: this.managementPort,
      metricsPort: this.metricsPort,
      close: (reason?: string) => this.close(reason),
    };
  }

  private accept(socket: Socket, input: SharedReadInput | null): void {
    try {
      new Connection(socket, this, socket.remoteAddress, socket.remotePort, null, input);
    } catch (err) {
      this.logger.error({ err, peer: socket.remoteAddress }, 'internal error accepting a connection (contained)');
      socket.destroy();
    }
  }

  /** A TLS client: with a verified certificate, SASL EXTERNAL logs in as the name it carries. */
  private acceptTls(socket: TLSSocket, cert: X509Certificate | null): void {
    const c = this.config;
    try {
      const login = cert === null ? null : certificateLoginName(cert, { from: c.tlsCertLoginFrom, sanType: c.tlsCertLoginSanType, sanIndex: c.tlsCertLoginSanIndex });
      new Connection(socket, this, socket.remoteAddress, socket.remotePort, login);
    } catch (err) {
      this.logger.error({ err, peer: socket.remoteAddress }, 'internal error accepting a TLS connection (contained)');
      socket.destroy();
    }
  }

  /**
   * Serves a client connection accepted elsewhere (clustering: a follower's proxy passes the
   * client's own address along, so loopback-only users and logs see the real peer).
   */
  adopt(socket: Duplex, remoteAddress: string | undefined, remotePort: number | undefined): void {
    try {
      new Connection(socket, this, remoteAddress, remotePort);
    } catch (err) {
      this.logger.error({ err, peer: remoteAddress }, 'internal error accepting a forwarded connection (contained)');
      socket.destroy();
    }
  }

  /**
   * Stops serving without touching the store (clustering: leadership was lost, so nothing
   * may be confirmed any more): every connection is closed with 320 CONNECTION_FORCED.
   */
  async stopServing(reason: string): Promise<void> {
    const servers = [this.server, this.tlsServer].filter((x): x is Server => x !== null);
    this.server = null;
    this.tlsServer = null;
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.monitor?.stop();
    this.busyPoll.stop();
    await this.stopHttp();
    const serverClosed = Promise.all(servers.map((server) => new Promise<void>((r) => server.close(() => r()))));
    await Promise.all([...this.connections.values()].map((c) => c.forceClose(reason)));
    await serverClosed;
  }

  /** Once a second: consumer timeouts. */
  tick(): void {
    const now = Date.now();
    for (const c of this.connections.values()) c.checkConsumerTimeouts(now);
  }

  connectionOpened(conn: Connection): void {
    this.connections.set(conn.id, conn);
    this.sampler.trackConnection(conn);
  }

  connectionClosed(conn: Connection): void {
    this.connections.delete(conn.id);
    this.sampler.connectionClosed(conn);
  }

  channelOpened(ch: Channel): void {
    const conn = ch.conn;
    this.sampler.trackChannel(ch.stats, conn.vhostName, () => conn.channels.get(ch.id) !== ch);
  }

  async close(reason = 'shutdown'): Promise<void> {
    await this.stopServing(reason);
    // close() writes what is pending first; a store that cannot rejects, and so does this
    await this.store.close();
  }
}

/**
 * Starts a broker. Library defaults: 127.0.0.1, ephemeral port, in-memory store, silent
 * logs, no management API and no metrics (pass managementPort / metricsPort, 0 = ephemeral).
 */
export async function startBroker(options: BrokerOptions = {}): Promise<RunningBroker> {
  const { logger, ...given } = options;
  const overrides = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  const config = resolveConfig({
    host: '127.0.0.1',
    port: 0,
    dataDir: null,
    logLevel: 'silent',
    // HTTP front ends are opt-in for library use (tests pass 0 for an ephemeral port)
    managementPort: null,
    metricsPort: null,
    ...overrides,
  });
  const broker = new Broker(config, logger ?? createLogger(config.logLevel));
  return broker.start();
}
