/**
 * Typed broker configuration. Built once (defaults ← environment ← CLI flags) and
 * passed down; nothing reads a global.
 */
export interface UserConfig {
  readonly username: string;
  readonly password: string;
}

/** High availability on etcd (docs/clustering.md). Absent: a single node, no etcd. */
export interface ClusterConfig {
  /** etcd client endpoints (host:port or URLs) */
  readonly etcd: readonly string[];
  /** the cluster port: replication and proxied AMQP between nodes */
  readonly port: number;
  /** the host other nodes and clients reach this node at (its AMQP and cluster ports) */
  readonly advertise: string;
  /** null = generated once and kept in <data dir>/cluster/node-id */
  readonly nodeId: string | null;
  /** key prefix in etcd: /warren/<name>/ (several clusters may share one etcd) */
  readonly name: string;
  /** etcd lease TTL (s): a dead leader is replaced after about this long */
  readonly leaseTtl: number;
  /** fewest nodes (leader included) holding a record before it is confirmed */
  readonly minInsync: number;
  /** an ISR follower that makes no progress for this long (ms) is evicted */
  readonly followerAckTimeout: number;
  /** PEM files for TLS on the cluster port (all three, or none) */
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string } | null;
}

export interface WarrenConfig {
  readonly host: string;
  /** 0 = ephemeral port */
  readonly port: number;
  /** null = in-memory store (nothing survives a restart) */
  readonly dataDir: string | null;
  readonly logLevel: string;
  /** seconds proposed in connection.tune; 0 disables heartbeats */
  readonly heartbeat: number;
  readonly frameMax: number;
  readonly channelMax: number;
  /** largest message body accepted (RabbitMQ's max_message_size default: 128 MiB) */
  readonly maxMessageSize: number;
  /** RabbitMQ's consumer_timeout: an unacked delivery older than this (ms) closes its channel; 0 disables */
  readonly consumerTimeout: number;
  /**
   * RabbitMQ's vm_memory_high_watermark: a fraction of RAM (<= 1) or bytes (> 1); above it
   * publishing connections are blocked (connection.blocked). 0 disables the memory alarm.
   */
  readonly memoryHighWatermark: number;
  /** RabbitMQ's disk_free_limit (bytes free on the data dir's disk); 0 disables the disk alarm */
  readonly diskFreeLimit: number;
  /**
   * Memory for ready messages held in queues, broker-wide (with a data dir): beyond it the
   * biggest backlogs page out. A fraction (<= 1) of the memory high watermark, or bytes
   * (> 1); 0 = automatic: half the high watermark (RabbitMQ's paging ratio), at most 96 MiB.
   */
  readonly queueMemoryBudget: number;
  /** ready messages a queue keeps in memory at most, whatever the budget; 0 = no such limit */
  readonly queueMemoryWindow: number;
  /**
   * Microseconds the event loop keeps polling sockets after a read before it may sleep
   * (transport/busy-poll.ts; the Erlang VM's scheduler busy wait under RabbitMQ); 0 = off.
   */
  readonly busyPoll: number;
  /**
   * Start on a damaged store with what can be read (the damaged files kept aside, every
   * loss logged at error level). Without it Warren refuses to start on a damaged store.
   */
  readonly forceRecovery: boolean;
  /**
   * RabbitMQ's default_user / default_pass: created, with the administrator tag and full
   * permissions on the default vhosts, when the store is new (never again afterwards).
   */
  readonly defaultUser: UserConfig;
  /** vhosts created when the store is new (RabbitMQ's default_vhost) */
  readonly vhosts: readonly string[];
  /** RabbitMQ's loopback_users: these users may only connect from 127.0.0.0/8 or ::1 */
  readonly loopbackUsers: readonly string[];
  /** the plain (non-TLS) listener on `port`; false with --no-plain (TLS only) */
  readonly plain: boolean;
  /** the amqps listener's port (RabbitMQ: 5671); null = no TLS listener; 0 = ephemeral */
  readonly tlsPort: number | null;
  /** PEM files of the server certificate (chain), its key and the CA(s) that sign client certificates */
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  readonly tlsCa: string | null;
  /** RabbitMQ's verify_peer: ask clients for a certificate and refuse one that does not verify against tlsCa */
  readonly tlsVerifyPeer: boolean;
  /** RabbitMQ's fail_if_no_peer_cert: with tlsVerifyPeer, refuse clients without a certificate */
  readonly tlsFailIfNoPeerCert: boolean;
  /** SASL EXTERNAL: where the user name comes from (rabbitmq_auth_mechanism_ssl's ssl_cert_login_from) */
  readonly tlsCertLoginFrom: 'common_name' | 'distinguished_name' | 'subject_alternative_name';
  /** with subject_alternative_name: the SAN type and index (ssl_cert_login_san_type / _index) */
  readonly tlsCertLoginSanType: 'dns' | 'email' | 'uri' | 'ip';
  readonly tlsCertLoginSanIndex: number;
  /** ms a client has to finish the TLS handshake (RabbitMQ's ssl_handshake_timeout) */
  readonly tlsHandshakeTimeout: number;
  /** a definitions file (RabbitMQ's export format) imported at startup: users, vhosts, permissions, limits, topology */
  readonly definitions: string | null;
  /** management HTTP API and dashboard; null = off, 0 = an ephemeral port */
  readonly managementPort: number | null;
  /** Prometheus metrics; null = off, 0 = an ephemeral port */
  readonly metricsPort: number | null;
  /** ms between stats ticks (RabbitMQ's collect_statistics_interval): rates are per second over one tick */
  readonly statsInterval: number;
  /** log lines: JSON, human-readable, or pretty only when stdout is a terminal */
  readonly logFormat: LogFormat;
  /** null = a single node */
  readonly cluster: ClusterConfig | null;
}

export const LOG_FORMATS = ['json', 'pretty', 'auto'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export const DEFAULT_CONFIG: WarrenConfig = {
  host: '0.0.0.0',
  port: 5672,
  dataDir: './data',
  logLevel: 'info',
  heartbeat: 60,
  frameMax: 131072,
  channelMax: 2047,
  maxMessageSize: 128 * 1024 * 1024,
  consumerTimeout: 30 * 60 * 1000,
  memoryHighWatermark: 0.6,
  queueMemoryBudget: 0,
  queueMemoryWindow: 0,
  busyPoll: 100,
  diskFreeLimit: 50_000_000,
  defaultUser: { username: 'guest', password: 'guest' },
  forceRecovery: false,
  vhosts: ['/'],
  loopbackUsers: ['guest'],
  plain: true,
  tlsPort: null,
  tlsCert: null,
  tlsKey: null,
  tlsCa: null,
  tlsVerifyPeer: false,
  tlsFailIfNoPeerCert: false,
  tlsCertLoginFrom: 'common_name',
  tlsCertLoginSanType: 'dns',
  tlsCertLoginSanIndex: 0,
  tlsHandshakeTimeout: 5000,
  definitions: null,
  managementPort: 15672,
  metricsPort: 15692,
  statsInterval: 5000,
  logFormat: 'auto',
  cluster: null,
};

export const DEFAULT_CLUSTER: Omit<ClusterConfig, 'etcd' | 'advertise'> = {
  port: 5679,
  nodeId: null,
  name: 'warren',
  leaseTtl: 3,
  minInsync: 1,
  followerAckTimeout: 2000,
  tls: null,
};

export function resolveConfig(overrides: Partial<WarrenConfig> = {}): WarrenConfig {
  const defined = Object.fromEntries(
    Object.entries(overrides).filter(([, v]) => v !== undefined),
  ) as Partial<WarrenConfig>;
  return { ...DEFAULT_CONFIG, ...defined };
}
