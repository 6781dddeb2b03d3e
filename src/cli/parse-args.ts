import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_CLUSTER as DC, DEFAULT_CONFIG as D, LOG_FORMATS, resolveConfig, type ClusterConfig, type UserConfig, type WarrenConfig } from '../config/config.js';
import { ConfigFileError, readConfigFile, type ConfigFileValues } from '../config/config-file.js';

/** A bad command line or environment value. The CLI prints `message` on one line and exits 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

export type CliCommand =
  | { readonly command: 'start'; readonly config: WarrenConfig }
  | { readonly command: 'cluster-status'; readonly etcd: readonly string[]; readonly clusterName: string; readonly json: boolean }
  | { readonly help: true }
  | { readonly version: true };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Largest value of an AMQP `long` (frame-max is negotiated as one in connection.tune). */
const MAX_UINT32 = 0xffff_ffff;
/** Largest value of an AMQP `short` (channel-max and heartbeat are shorts in connection.tune). */
const MAX_UINT16 = 0xffff;
/** spec: frame-max may not be below frame-min-size (4096). */
const FRAME_MIN_SIZE = 4096;

// Defaults are interpolated from DEFAULT_CONFIG so the help never drifts from the code.
export const USAGE = `Usage: warren <command> [options]

Commands:
  start                  run the broker in the foreground
  ctl <subcommand>       manage a running broker over its management API
                         ('warren ctl --help' lists the subcommands)
  cluster status         print the cluster's leader, ISR and nodes (needs --cluster-etcd)

Options (each can also come from the environment variable shown, or from the
config file under the flag's name without dashes; flags win over the environment,
which wins over the file):
  --config <file>        YAML config file (see README)     WARREN_CONFIG_FILE
  --host <addr>          address to listen on             WARREN_HOST        (default ${D.host})
  --port <n>             TCP port, 0 = ephemeral          WARREN_PORT        (default ${D.port})
  --data-dir <path>      where durable state is stored    WARREN_DATA_DIR    (default ${D.dataDir})
  --log-level <level>    fatal|error|warn|info|debug|trace|silent
                                                          WARREN_LOG_LEVEL   (default ${D.logLevel})
  --heartbeat <s>        heartbeat proposed to clients, 0 = off
                                                          WARREN_HEARTBEAT   (default ${D.heartbeat})
  --frame-max <bytes>    largest frame proposed to clients
                                                          WARREN_FRAME_MAX   (default ${D.frameMax})
  --channel-max <n>      most channels per connection     WARREN_CHANNEL_MAX (default ${D.channelMax})
  --consumer-timeout <ms> close a channel whose delivery stays unacked this long, 0 = off
                                                          WARREN_CONSUMER_TIMEOUT (default ${D.consumerTimeout})
  --memory-high-watermark <fraction|bytes>
                         block publishers above this memory use, 0 = off
                                                          WARREN_MEMORY_HIGH_WATERMARK (default ${D.memoryHighWatermark})
  --disk-free-limit <bytes>
                         block publishers when the data disk has less free, 0 = off
                                                          WARREN_DISK_FREE_LIMIT (default ${D.diskFreeLimit})
  --queue-memory-budget <fraction|bytes>
                         memory for messages waiting in queues; beyond it the
                         biggest backlogs page to disk. A fraction of the memory
                         high watermark or bytes; 0 = half the watermark, at most
                         96 MiB                           WARREN_QUEUE_MEMORY_BUDGET (default ${D.queueMemoryBudget})
  --queue-memory-window <n>
                         ready messages a queue keeps in memory at most, whatever
                         the budget, 0 = no such limit    WARREN_QUEUE_MEMORY_WINDOW (default ${D.queueMemoryWindow})
  --busy-poll <us>       keep polling sockets this many microseconds after a read
                         before sleeping (lower latency, CPU use while traffic is
                         sparse), 0 = off                 WARREN_BUSY_POLL (default ${D.busyPoll})
  --management-port <n>  management API and dashboard, 0 = off
                                                          WARREN_MANAGEMENT_PORT (default ${D.managementPort})
  --metrics-port <n>     Prometheus metrics, 0 = off      WARREN_METRICS_PORT (default ${D.metricsPort})
  --stats-interval <ms>  statistics tick (rates are per second over one tick)
                                                          WARREN_STATS_INTERVAL (default ${D.statsInterval})
  --log-format <format>  json|pretty|auto (auto: pretty on a terminal)
                                                          WARREN_LOG_FORMAT (default ${D.logFormat})
  --force-recovery       start on a damaged store with what can be read (the damaged
                         files are kept in <data-dir>/damaged-<time>/); without it
                         Warren refuses to start on damage and says what and where
                                                          WARREN_FORCE_RECOVERY (true|false, default false)
  --default-user <name>  replace the guest user with this user, who may connect
                         from any address                 WARREN_DEFAULT_USER
  --default-pass <pw>    password for --default-user      WARREN_DEFAULT_PASS
                         (both only take effect when the data dir is new)
  --definitions <file>   import a RabbitMQ definitions file at startup (users,
                         vhosts, permissions, limits, exchanges, queues, bindings)
                                                          WARREN_DEFINITIONS
  --no-plain             no plain AMQP listener (TLS only) WARREN_NO_PLAIN
  --tls-port <n>         amqps listener, off by default (RabbitMQ uses 5671)
                                                          WARREN_TLS_PORT
  --tls-cert <pem>       server certificate (chain)       WARREN_TLS_CERT
  --tls-key <pem>        its private key                  WARREN_TLS_KEY
  --tls-ca <pem>         CA certificates for client certificates
                                                          WARREN_TLS_CA
  --tls-verify-peer      ask for a client certificate, refuse one that does not verify
                                                          WARREN_TLS_VERIFY_PEER
  --tls-fail-if-no-peer-cert
                         with --tls-verify-peer, refuse clients without one
                                                          WARREN_TLS_FAIL_IF_NO_PEER_CERT
  --tls-cert-login-from <common_name|distinguished_name|subject_alternative_name>
                         SASL EXTERNAL user name source   WARREN_TLS_CERT_LOGIN_FROM (default ${D.tlsCertLoginFrom})
  --tls-cert-login-san-type <dns|email|uri|ip>
                         which SAN, with subject_alternative_name
                                                          WARREN_TLS_CERT_LOGIN_SAN_TYPE (default ${D.tlsCertLoginSanType})
  --tls-cert-login-san-index <n>
                         which one of them, 0 = first     WARREN_TLS_CERT_LOGIN_SAN_INDEX (default ${D.tlsCertLoginSanIndex})
  --tls-handshake-timeout <ms>
                         drop clients that do not finish the TLS handshake in time
                                                          WARREN_TLS_HANDSHAKE_TIMEOUT (default ${D.tlsHandshakeTimeout})

High availability (docs/clustering.md); --cluster-etcd turns clustering on:
  --cluster-etcd <url,...>   etcd endpoints                WARREN_CLUSTER_ETCD
  --cluster-port <n>     port for replication and proxied AMQP between nodes
                                                          WARREN_CLUSTER_PORT (default ${DC.port})
  --cluster-advertise <host> address other nodes and clients reach this node at
                         (default: --host unless it is a wildcard)
                                                          WARREN_CLUSTER_ADVERTISE
  --node-id <id>         this node's id (default: generated once, kept in the data dir)
                                                          WARREN_NODE_ID
  --cluster-name <name>  etcd key prefix /warren/<name>/  WARREN_CLUSTER_NAME (default ${DC.name})
  --cluster-lease-ttl <s> etcd lease TTL: failover takes about this long
                                                          WARREN_CLUSTER_LEASE_TTL (default ${DC.leaseTtl})
  --cluster-min-insync <n> nodes that must hold a write before it is confirmed
                                                          WARREN_CLUSTER_MIN_INSYNC (default ${DC.minInsync})
  --cluster-follower-timeout <ms> evict a follower that makes no progress this long
                                                          WARREN_CLUSTER_FOLLOWER_TIMEOUT (default ${DC.followerAckTimeout})
  --cluster-tls-cert/--cluster-tls-key/--cluster-tls-ca <pem>
                         TLS on the cluster port (all three)
                                                          WARREN_CLUSTER_TLS_CERT/_KEY/_CA
  --json                 cluster status: print JSON

  -h, --help             show this help
  -v, --version          print the version
`;

interface Setting {
  readonly flag: string;
  readonly env: string;
}

const SETTINGS = {
  host: { flag: 'host', env: 'WARREN_HOST' },
  port: { flag: 'port', env: 'WARREN_PORT' },
  dataDir: { flag: 'data-dir', env: 'WARREN_DATA_DIR' },
  logLevel: { flag: 'log-level', env: 'WARREN_LOG_LEVEL' },
  heartbeat: { flag: 'heartbeat', env: 'WARREN_HEARTBEAT' },
  frameMax: { flag: 'frame-max', env: 'WARREN_FRAME_MAX' },
  channelMax: { flag: 'channel-max', env: 'WARREN_CHANNEL_MAX' },
  consumerTimeout: { flag: 'consumer-timeout', env: 'WARREN_CONSUMER_TIMEOUT' },
  memoryHighWatermark: { flag: 'memory-high-watermark', env: 'WARREN_MEMORY_HIGH_WATERMARK' },
  diskFreeLimit: { flag: 'disk-free-limit', env: 'WARREN_DISK_FREE_LIMIT' },
  queueMemoryBudget: { flag: 'queue-memory-budget', env: 'WARREN_QUEUE_MEMORY_BUDGET' },
  queueMemoryWindow: { flag: 'queue-memory-window', env: 'WARREN_QUEUE_MEMORY_WINDOW' },
  busyPoll: { flag: 'busy-poll', env: 'WARREN_BUSY_POLL' },
  forceRecovery: { flag: 'force-recovery', env: 'WARREN_FORCE_RECOVERY' },
  defaultUser: { flag: 'default-user', env: 'WARREN_DEFAULT_USER' },
  defaultPass: { flag: 'default-pass', env: 'WARREN_DEFAULT_PASS' },
  definitions: { flag: 'definitions', env: 'WARREN_DEFINITIONS' },
  noPlain: { flag: 'no-plain', env: 'WARREN_NO_PLAIN' },
  tlsPort: { flag: 'tls-port', env: 'WARREN_TLS_PORT' },
  tlsCert: { flag: 'tls-cert', env: 'WARREN_TLS_CERT' },
  tlsKey: { flag: 'tls-key', env: 'WARREN_TLS_KEY' },
  tlsCa: { flag: 'tls-ca', env: 'WARREN_TLS_CA' },
  tlsVerifyPeer: { flag: 'tls-verify-peer', env: 'WARREN_TLS_VERIFY_PEER' },
  tlsFailIfNoPeerCert: { flag: 'tls-fail-if-no-peer-cert', env: 'WARREN_TLS_FAIL_IF_NO_PEER_CERT' },
  tlsCertLoginFrom: { flag: 'tls-cert-login-from', env: 'WARREN_TLS_CERT_LOGIN_FROM' },
  tlsCertLoginSanType: { flag: 'tls-cert-login-san-type', env: 'WARREN_TLS_CERT_LOGIN_SAN_TYPE' },
  tlsCertLoginSanIndex: { flag: 'tls-cert-login-san-index', env: 'WARREN_TLS_CERT_LOGIN_SAN_INDEX' },
  tlsHandshakeTimeout: { flag: 'tls-handshake-timeout', env: 'WARREN_TLS_HANDSHAKE_TIMEOUT' },
  managementPort: { flag: 'management-port', env: 'WARREN_MANAGEMENT_PORT' },
  metricsPort: { flag: 'metrics-port', env: 'WARREN_METRICS_PORT' },
  statsInterval: { flag: 'stats-interval', env: 'WARREN_STATS_INTERVAL' },
  logFormat: { flag: 'log-format', env: 'WARREN_LOG_FORMAT' },
  clusterEtcd: { flag: 'cluster-etcd', env: 'WARREN_CLUSTER_ETCD' },
  clusterPort: { flag: 'cluster-port', env: 'WARREN_CLUSTER_PORT' },
  clusterAdvertise: { flag: 'cluster-advertise', env: 'WARREN_CLUSTER_ADVERTISE' },
  nodeId: { flag: 'node-id', env: 'WARREN_NODE_ID' },
  clusterName: { flag: 'cluster-name', env: 'WARREN_CLUSTER_NAME' },
  clusterLeaseTtl: { flag: 'cluster-lease-ttl', env: 'WARREN_CLUSTER_LEASE_TTL' },
  clusterMinInsync: { flag: 'cluster-min-insync', env: 'WARREN_CLUSTER_MIN_INSYNC' },
  clusterFollowerTimeout: { flag: 'cluster-follower-timeout', env: 'WARREN_CLUSTER_FOLLOWER_TIMEOUT' },
  clusterTlsCert: { flag: 'cluster-tls-cert', env: 'WARREN_CLUSTER_TLS_CERT' },
  clusterTlsKey: { flag: 'cluster-tls-key', env: 'WARREN_CLUSTER_TLS_KEY' },
  clusterTlsCa: { flag: 'cluster-tls-ca', env: 'WARREN_CLUSTER_TLS_CA' },
} as const satisfies Record<string, Setting>;

/** Every setting a config file may hold: the flag names (the file itself is named by --config). */
export const CONFIG_FILE_KEYS: readonly string[] = Object.values(SETTINGS).map((s) => s.flag);

type SettingName = keyof typeof SETTINGS;

const PARSE_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  host: { type: 'string' },
  port: { type: 'string' },
  'data-dir': { type: 'string' },
  'log-level': { type: 'string' },
  heartbeat: { type: 'string' },
  'frame-max': { type: 'string' },
  'channel-max': { type: 'string' },
  'consumer-timeout': { type: 'string' },
  'memory-high-watermark': { type: 'string' },
  'disk-free-limit': { type: 'string' },
  'queue-memory-budget': { type: 'string' },
  'queue-memory-window': { type: 'string' },
  'busy-poll': { type: 'string' },
  'force-recovery': { type: 'boolean' },
  'default-user': { type: 'string' },
  'default-pass': { type: 'string' },
  definitions: { type: 'string' },
  'no-plain': { type: 'boolean' },
  'tls-port': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-verify-peer': { type: 'boolean' },
  'tls-fail-if-no-peer-cert': { type: 'boolean' },
  'tls-cert-login-from': { type: 'string' },
  'tls-cert-login-san-type': { type: 'string' },
  'tls-cert-login-san-index': { type: 'string' },
  'tls-handshake-timeout': { type: 'string' },
  'management-port': { type: 'string' },
  'metrics-port': { type: 'string' },
  'stats-interval': { type: 'string' },
  'log-format': { type: 'string' },
  config: { type: 'string' },
  'cluster-etcd': { type: 'string' },
  'cluster-port': { type: 'string' },
  'cluster-advertise': { type: 'string' },
  'node-id': { type: 'string' },
  'cluster-name': { type: 'string' },
  'cluster-lease-ttl': { type: 'string' },
  'cluster-min-insync': { type: 'string' },
  'cluster-follower-timeout': { type: 'string' },
  'cluster-tls-cert': { type: 'string' },
  'cluster-tls-key': { type: 'string' },
  'cluster-tls-ca': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** A raw value plus where it came from, so errors name the flag or variable the user typed. */
interface RawValue {
  readonly value: string;
  readonly source: string;
}

/**
 * Turns `argv` (without node and script: `process.argv.slice(2)`) and the environment into
 * a command. Precedence: flag > environment variable > config file (--config) >
 * DEFAULT_CONFIG. An empty environment variable counts as unset (as
 * `docker run -e WARREN_PORT=` would produce). The only I/O is reading the config file,
 * through `readFile` (tests pass their own).
 * @throws CliUsageError on unknown flags, unknown commands, invalid values or a bad config file.
 */
export function parseCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): CliCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: PARSE_OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    // node's messages start with one clear line ("Unknown option '--prot'. ..."); the
    // hints that follow (e.g. for '--port -1') would break the one-line error contract.
    const message = err instanceof Error ? err.message : String(err);
    throw new CliUsageError(message.split('\n', 1)[0]!);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return { help: true };
  if (values.version === true) return { version: true };

  const [command, ...extra] = positionals;
  if (command === undefined) throw new CliUsageError("missing command: try 'warren start' or 'warren --help'");
  if (command === 'help') return { help: true };

  const configPath = values.config ?? (env.WARREN_CONFIG_FILE === '' ? undefined : env.WARREN_CONFIG_FILE);
  let file: ConfigFileValues = {};
  if (configPath !== undefined) {
    try {
      file = readConfigFile(configPath, readFile, CONFIG_FILE_KEYS);
    } catch (err) {
      if (err instanceof ConfigFileError) throw new CliUsageError(err.message);
      throw err;
    }
  }

  const raw = (name: SettingName): RawValue | undefined => {
    const { flag, env: envName } = SETTINGS[name];
    const fromFlag = values[flag];
    if (fromFlag === true) return { value: 'true', source: `--${flag}` };
    if (typeof fromFlag === 'string') return { value: fromFlag, source: `--${flag}` };
    const fromEnv = env[envName];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: envName };
    const fromFile = file[flag];
    if (fromFile !== undefined) return { value: fromFile, source: `'${flag}' in ${configPath}` };
    return undefined;
  };

  if (command === 'cluster') {
    if (extra[0] !== 'status') throw new CliUsageError(`unknown cluster command '${extra[0] ?? ''}': try 'warren cluster status'`);
    if (extra.length > 1) throw new CliUsageError(`unexpected argument '${extra[1]}'`);
    const etcd = endpoints(raw('clusterEtcd'));
    if (etcd === undefined) throw new CliUsageError('warren cluster status needs --cluster-etcd (or WARREN_CLUSTER_ETCD)');
    return { command: 'cluster-status', etcd, clusterName: name(raw('clusterName')) ?? DC.name, json: values.json === true };
  }
  if (command !== 'start') throw new CliUsageError(`unknown command '${command}': try 'warren start' or 'warren --help'`);
  if (extra.length > 0) throw new CliUsageError(`unexpected argument '${extra[0]}'`);
  if (values.json === true) throw new CliUsageError('--json belongs to warren cluster status');

  const host = raw('host');
  if (host !== undefined && host.value.trim() === '') throw invalid(host, 'expected a host name or address');
  const dataDir = raw('dataDir');
  if (dataDir !== undefined && dataDir.value === '') throw invalid(dataDir, 'expected a directory path');
  const logLevel = raw('logLevel');
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel.value)) {
    throw invalid(logLevel, `expected one of ${LOG_LEVELS.join(', ')}`);
  }

  const config = resolveConfig({
    host: host?.value,
    port: integer(raw('port'), 0, MAX_UINT16),
    dataDir: dataDir?.value,
    logLevel: logLevel?.value,
    heartbeat: integer(raw('heartbeat'), 0, MAX_UINT16),
    frameMax: integer(raw('frameMax'), FRAME_MIN_SIZE, MAX_UINT32),
    // 0 would mean "no limit" in connection.tune; the broker needs a real bound to enforce.
    channelMax: integer(raw('channelMax'), 1, MAX_UINT16),
    consumerTimeout: integer(raw('consumerTimeout'), 0, MAX_UINT32),
    memoryHighWatermark: watermark(raw('memoryHighWatermark')),
    diskFreeLimit: integer(raw('diskFreeLimit'), 0, Number.MAX_SAFE_INTEGER),
    queueMemoryBudget: watermark(raw('queueMemoryBudget')),
    queueMemoryWindow: integer(raw('queueMemoryWindow'), 0, 16 * 1024 * 1024),
    busyPoll: integer(raw('busyPoll'), 0, 1_000_000),
    defaultUser: defaultUser(raw('defaultUser'), raw('defaultPass')),
    definitions: path(raw('definitions')),
    plain: flag(raw('noPlain')) === undefined ? undefined : !flag(raw('noPlain')),
    tlsPort: integer(raw('tlsPort'), 0, MAX_UINT16),
    tlsCert: path(raw('tlsCert')),
    tlsKey: path(raw('tlsKey')),
    tlsCa: path(raw('tlsCa')),
    tlsVerifyPeer: flag(raw('tlsVerifyPeer')),
    tlsFailIfNoPeerCert: flag(raw('tlsFailIfNoPeerCert')),
    tlsCertLoginFrom: oneOf(raw('tlsCertLoginFrom'), ['common_name', 'distinguished_name', 'subject_alternative_name'] as const),
    tlsCertLoginSanType: oneOf(raw('tlsCertLoginSanType'), ['dns', 'email', 'uri', 'ip'] as const),
    tlsCertLoginSanIndex: integer(raw('tlsCertLoginSanIndex'), 0, 1000),
    tlsHandshakeTimeout: integer(raw('tlsHandshakeTimeout'), 100, MAX_UINT32),
    managementPort: portOrOff(raw('managementPort')),
    metricsPort: portOrOff(raw('metricsPort')),
    statsInterval: integer(raw('statsInterval'), 100, 3_600_000),
    logFormat: oneOf(raw('logFormat'), LOG_FORMATS),
    forceRecovery: flag(raw('forceRecovery')),
    cluster: clusterConfig(raw, host?.value ?? D.host),
  });
  checkTls(config, raw);
  if (config.cluster !== null && config.dataDir === null) throw new CliUsageError('a cluster node needs --data-dir');
  return { command: 'start', config };
}

/** The TLS flags that only make sense together. */
function checkTls(config: WarrenConfig, raw: (name: SettingName) => RawValue | undefined): void {
  const tlsPort = raw('tlsPort');
  if (config.tlsPort !== null && (config.tlsCert === null || config.tlsKey === null)) {
    throw new CliUsageError(`${tlsPort!.source} needs --tls-cert and --tls-key (or WARREN_TLS_CERT and WARREN_TLS_KEY)`);
  }
  if (config.tlsPort === null) {
    for (const name of ['tlsCert', 'tlsKey', 'tlsCa', 'tlsVerifyPeer', 'tlsFailIfNoPeerCert'] as const) {
      const r = raw(name);
      if (r !== undefined) throw new CliUsageError(`${r.source} needs --tls-port (or WARREN_TLS_PORT)`);
    }
  }
  if (config.tlsVerifyPeer && config.tlsCa === null) {
    throw new CliUsageError(`${raw('tlsVerifyPeer')!.source} needs --tls-ca (the CA that signs client certificates)`);
  }
  if (config.tlsFailIfNoPeerCert && !config.tlsVerifyPeer) {
    throw new CliUsageError(`${raw('tlsFailIfNoPeerCert')!.source} needs --tls-verify-peer`);
  }
  if (!config.plain && config.tlsPort === null) {
    throw new CliUsageError(`${raw('noPlain')!.source} needs --tls-port: Warren would have no listener`);
  }
}

function path(raw: RawValue | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (raw.value === '') throw invalid(raw, 'expected a file path');
  return raw.value;
}

/** A boolean flag (present = true) or environment variable (true/false, 1/0, yes/no). */
function flag(raw: RawValue | undefined): boolean | undefined {
  if (raw === undefined) return undefined;
  const v = raw.value.toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  throw invalid(raw, 'expected true or false');
}

function oneOf<T extends string>(raw: RawValue | undefined, allowed: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw.value)) throw invalid(raw, `expected one of ${allowed.join(', ')}`);
  return raw.value as T;
}

function endpoints(raw: RawValue | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const list = raw.value.split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const e of list) {
    if (!/^(https?:\/\/)?[A-Za-z0-9.\-_]+(:[0-9]{1,5})?$|^(https?:\/\/)?\[[0-9a-fA-F:.]+\](:[0-9]{1,5})?$/.test(e)) throw invalid(raw, 'expected etcd endpoints such as 127.0.0.1:2379,10.0.0.2:2379');
  }
  if (list.length === 0) throw invalid(raw, 'expected at least one etcd endpoint');
  return list;
}

function name(raw: RawValue | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(raw.value)) throw invalid(raw, 'expected letters, digits, ".", "_" or "-" (at most 64)');
  return raw.value;
}

const CLUSTER_ONLY: SettingName[] = [
  'clusterPort', 'clusterAdvertise', 'nodeId', 'clusterName', 'clusterLeaseTtl', 'clusterMinInsync', 'clusterFollowerTimeout',
  'clusterTlsCert', 'clusterTlsKey', 'clusterTlsCa',
];

function clusterConfig(raw: (name: SettingName) => RawValue | undefined, host: string): ClusterConfig | null {
  const etcd = endpoints(raw('clusterEtcd'));
  if (etcd === undefined) {
    const stray = CLUSTER_ONLY.map(raw).find((r) => r !== undefined);
    if (stray !== undefined) throw new CliUsageError(`${stray.source} needs --cluster-etcd (or WARREN_CLUSTER_ETCD)`);
    return null;
  }
  const advertiseRaw = raw('clusterAdvertise');
  let advertise = advertiseRaw?.value.trim();
  if (advertiseRaw !== undefined && advertise === '') throw invalid(advertiseRaw, 'expected a host name or address');
  if (advertise === undefined) {
    if (host === '0.0.0.0' || host === '::') throw new CliUsageError('a cluster node listening on all addresses needs --cluster-advertise <host> (how other nodes and clients reach it)');
    advertise = host;
  }
  const nodeIdRaw = raw('nodeId');
  const tlsParts = [raw('clusterTlsCert'), raw('clusterTlsKey'), raw('clusterTlsCa')];
  const given = tlsParts.filter((t) => t !== undefined);
  if (given.length !== 0 && given.length !== 3) throw new CliUsageError('cluster TLS needs --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca together');
  return {
    etcd,
    advertise,
    port: integer(raw('clusterPort'), 0, MAX_UINT16) ?? DC.port,
    nodeId: nodeIdRaw === undefined ? null : name(nodeIdRaw)!,
    name: name(raw('clusterName')) ?? DC.name,
    leaseTtl: integer(raw('clusterLeaseTtl'), 2, 60) ?? DC.leaseTtl,
    minInsync: integer(raw('clusterMinInsync'), 1, 16) ?? DC.minInsync,
    followerAckTimeout: integer(raw('clusterFollowerTimeout'), 100, 60_000) ?? DC.followerAckTimeout,
    tls: given.length === 3 ? { cert: tlsParts[0]!.value, key: tlsParts[1]!.value, ca: tlsParts[2]!.value } : null,
  };
}

function invalid(raw: RawValue, expected: string): CliUsageError {
  return new CliUsageError(`invalid ${raw.source} ${JSON.stringify(raw.value)}: ${expected}`);
}

/** A fraction of RAM (0–1, e.g. 0.6) or a byte count (an integer above 1). */
function watermark(raw: RawValue | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^[0-9]+(\.[0-9]+)?$/.test(raw.value) ? Number(raw.value) : NaN;
  if (!Number.isFinite(n) || (n > 1 && !Number.isSafeInteger(n))) {
    throw invalid(raw, 'expected a fraction from 0 to 1 or a number of bytes');
  }
  return n;
}

/** An HTTP port; 0 turns the listener off (as the issue and RabbitMQ's docs use it). */
function portOrOff(raw: RawValue | undefined): number | null | undefined {
  const n = integer(raw, 0, MAX_UINT16);
  return n === 0 ? null : n;
}

function integer(raw: RawValue | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  // Digits only: rejects '', ' 5', '1e3', '0x10', '-1', '5.0' that Number() would accept or bend.
  const n = /^[0-9]+$/.test(raw.value) ? Number(raw.value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw invalid(raw, `expected an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * RabbitMQ: default_user/default_pass replace guest; only guest is in loopback_users,
 * so the replacement user may connect from other hosts (what a container needs).
 */
function defaultUser(user: RawValue | undefined, pass: RawValue | undefined): UserConfig | undefined {
  if (user === undefined) {
    if (pass === undefined) return undefined;
    throw new CliUsageError(`${pass.source} needs --default-user (or WARREN_DEFAULT_USER)`);
  }
  if (pass === undefined) throw new CliUsageError(`${user.source} needs --default-pass (or WARREN_DEFAULT_PASS)`);
  if (user.value.trim() === '') throw invalid(user, 'expected a user name');
  return { username: user.value, password: pass.value };
}
