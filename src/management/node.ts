import { availableParallelism, totalmem } from 'node:os';
import { RABBITMQ_COMPATIBLE_VERSION } from '../connection/server-properties.js';
import type { BrokerView } from '../monitoring/broker-view.js';
import { EXCHANGE_TYPES } from '../vhost/exchange.js';
import { channelMessageStats, queueTotals } from './format.js';
import { fileDescriptors, objectCounts } from '../monitoring/resources.js';

type Json = Record<string, unknown>;

/** RabbitMQ reserves part of the descriptors for files: sockets get 90% (rabbit_fhc). */
function socketsTotal(fdTotal: number): number {
  return Math.floor(fdTotal * 0.9);
}

/**
 * Erlang processes have no Warren equivalent: RabbitMQ runs one per connection, channel
 * and queue, so that is what proc_used counts; proc_total is RabbitMQ's default limit.
 */
export const PROCESS_LIMIT = 1_048_576;

export function exchangeTypes(): Json[] {
  const descriptions: Record<string, string> = {
    direct: 'AMQP direct exchange, as per the AMQP specification',
    fanout: 'AMQP fanout exchange, as per the AMQP specification',
    headers: 'AMQP headers exchange, as per the AMQP specification',
    topic: 'AMQP topic exchange, as per the AMQP specification',
    'x-consistent-hash': 'Consistent Hashing Exchange',
    'x-delayed-message': 'Delayed Message Exchange',
  };
  return [...EXCHANGE_TYPES].sort().map((name) => ({ name, description: descriptions[name] ?? name, enabled: true }));
}

function churnJson(view: BrokerView): Json {
  const c = view.sampler.churn;
  const out: Json = {};
  for (const [k, v] of [
    ['channel_closed', c.channelClosed],
    ['channel_created', c.channelCreated],
    ['connection_closed', c.connectionClosed],
    ['connection_created', c.connectionCreated],
    ['queue_created', c.queueCreated],
    ['queue_declared', c.queueDeclared],
    ['queue_deleted', c.queueDeleted],
  ] as const) {
    out[k] = v;
    out[`${k}_details`] = { rate: 0 };
  }
  return out;
}

export function nodeJson(view: BrokerView): Json {
  const r = view.resources();
  const fds = fileDescriptors();
  const counts = objectCounts(view);
  const listeners = view.listeners();
  return {
    applications: [{ name: 'warren', description: 'Warren AMQP 0-9-1 broker', version: view.version }],
    auth_mechanisms: [
      { name: 'PLAIN', description: 'SASL PLAIN authentication mechanism', enabled: true },
      { name: 'AMQPLAIN', description: 'QPid AMQPLAIN mechanism', enabled: true },
    ],
    cluster_links: [],
    config_files: [],
    contexts: contexts(view),
    db_dir: view.config.dataDir ?? '',
    disk_free: r.diskFree < 0 ? 0 : r.diskFree,
    disk_free_alarm: r.diskAlarm,
    disk_free_limit: r.diskFreeLimit,
    enabled_plugins: [],
    exchange_types: exchangeTypes(),
    fd_total: fds.total,
    fd_used: fds.used,
    log_files: ['<stdout>'],
    mem_alarm: r.memoryAlarm,
    mem_calculation_strategy: 'rss',
    mem_limit: r.memoryLimit > 0 ? r.memoryLimit : totalmem(),
    mem_used: r.memoryUsed,
    name: view.nodeName,
    net_ticktime: 60,
    os_pid: String(process.pid),
    partitions: [],
    proc_total: PROCESS_LIMIT,
    proc_used: counts.connections + counts.channels + counts.queues,
    processors: availableParallelism(),
    rates_mode: 'basic',
    run_queue: 0,
    running: true,
    // the listening sockets count too (RabbitMQ's check_rabbitmq_server needs a non-zero value)
    sockets_total: socketsTotal(fds.total),
    sockets_used: counts.connections + listeners.filter((l) => l.protocol === 'amqp').length,
    type: 'disc',
    uptime: Date.now() - view.startedAt,
    ...churnJson(view),
    ...clusterJson(view),
  };
}

/**
 * A cluster node's role and replication lag (Warren's own fields; absent on a single node).
 * The management API runs on the leader, so its followers are listed from its side: each
 * one's acked record and lag, connected and in-sync flags.
 */
export function clusterJson(view: BrokerView): Json {
  const c = view.clusterStatus();
  if (c === null) return {};
  const r = c.replication;
  return {
    cluster_role: c.role,
    replication_lag: c.lag,
    warren_cluster: {
      node_id: c.nodeId,
      role: c.role,
      term: c.term,
      leader: c.leader,
      isr: c.isr,
      replication_lag: c.lag,
      commit_seq: r?.commitSeq ?? null,
      applied_seq: r?.appliedSeq ?? null,
      followers:
        r?.role === 'leader'
          ? r.followers.map((f) => ({ node_id: f.id, connected: f.connected, in_sync: f.inIsr, acked_seq: f.matchSeq, replication_lag: f.lag }))
          : [],
    },
  };
}

function contexts(view: BrokerView): Json[] {
  return view.listeners()
    .filter((l) => l.protocol !== 'amqp')
    .map((l) => ({
      description: l.protocol === 'http' ? 'Warren Management' : 'Warren Prometheus',
      node: view.nodeName,
      path: '/',
      port: String(l.port),
      ...(l.protocol === 'http/prometheus' ? { protocol: 'http/prometheus' } : {}),
    }));
}

export function overviewJson(view: BrokerView): Json {
  const counts = objectCounts(view);
  return {
    churn_rates: churnJson(view),
    cluster_name: view.nodeName,
    contexts: contexts(view),
    disable_stats: false,
    enable_queue_totals: false,
    erlang_full_version: `Node.js ${process.version}`,
    erlang_version: process.version,
    exchange_types: exchangeTypes(),
    listeners: view.listeners().map((l) => ({ node: view.nodeName, protocol: l.protocol, ip_address: l.ip, port: l.port, socket_opts: {} })),
    management_version: RABBITMQ_COMPATIBLE_VERSION,
    message_stats: channelMessageStats(view.sampler.global.messages),
    node: view.nodeName,
    object_totals: {
      channels: counts.channels,
      connections: counts.connections,
      consumers: counts.consumers,
      exchanges: counts.exchanges,
      queues: counts.queues,
    },
    product_name: 'Warren',
    product_version: view.version,
    queue_totals: queueTotals(view.sampler.global),
    // the RabbitMQ release Warren follows, as in connection.start; product_* name Warren itself
    // (RabbitMQ's own product_name/product_version overrides work the same way)
    rabbitmq_version: RABBITMQ_COMPATIBLE_VERSION,
    warren_version: view.version,
    rates_mode: 'basic',
    sample_retention_policies: { global: [600, 3600], basic: [600], detailed: [] },
    statistics_db_event_queue: 0,
  };
}
