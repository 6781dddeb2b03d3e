import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Channel } from '../connection/channel.js';
import type { Connection } from '../connection/connection.js';
import { channelName, connectionName } from '../monitoring/names.js';
import { fileDescriptors, objectCounts } from '../monitoring/resources.js';
import { RABBITMQ_COMPATIBLE_VERSION } from '../connection/server-properties.js';
import type { BrokerView } from '../monitoring/broker-view.js';
import type { ChannelCounters } from '../stats/counters.js';
import type { Queue } from '../queue/queue.js';

/**
 * Prometheus metrics with rabbitmq_prometheus' names, labels and help texts, so that the
 * RabbitMQ-Overview Grafana dashboard and existing alerts work unchanged, plus Warren's
 * own under `warren_`. Every value is read from the model at scrape time (pull): nothing
 * on the message path knows about Prometheus. prom-client writes the text format.
 *
 * `/metrics` aggregates per-object families into one unlabelled series (as RabbitMQ does
 * by default); `/metrics/per-object` labels them with vhost+queue, channel or connection.
 */

type Labels = Record<string, string>;
type Sample = readonly [Labels, number];
type Read = () => readonly Sample[] | Promise<readonly Sample[]>;

const AMQP = { protocol: 'amqp091' } as const;
const CLASSIC = { protocol: 'amqp091', queue_type: 'rabbit_classic_queue' } as const;

/** How long a measured data dir size is reused (scrapes come every few seconds). */
const STORE_SIZE_TTL_MS = 10_000;

export class PrometheusExporter {
  private readonly aggregated = new Registry();
  private readonly perObject = new Registry();
  private storeSize: { at: number; bytes: number } | null = null;

  constructor(private readonly view: BrokerView) {
    this.define(this.aggregated, false);
    this.define(this.perObject, true);
  }

  /** The exposition text; the broker-wide counters are brought up to date first. */
  async render(perObject: boolean): Promise<string> {
    this.view.sampler.fold();
    return (perObject ? this.perObject : this.aggregated).metrics();
  }

  private define(reg: Registry, perObject: boolean): void {
    const view = this.view;
    const gauge = (name: string, help: string, labelNames: readonly string[], read: Read) => {
      new Gauge({
        name,
        help,
        labelNames,
        registers: [reg],
        async collect() {
          this.reset();
          for (const [labels, v] of await read()) this.set(labels, v);
        },
      });
    };
    const counter = (name: string, help: string, labelNames: readonly string[], read: Read) => {
      new Counter({
        name,
        help,
        labelNames,
        registers: [reg],
        async collect() {
          this.reset();
          for (const [labels, v] of await read()) this.inc(labels, v);
        },
      });
    };
    const one = (v: number): readonly Sample[] => [[{}, v]];

    // ---- identity ----------------------------------------------------------------------------
    gauge('rabbitmq_identity_info', 'RabbitMQ node & cluster identity info', ['rabbitmq_node', 'rabbitmq_cluster', 'rabbitmq_cluster_permanent_id'], () => [
      [{ rabbitmq_node: view.nodeName, rabbitmq_cluster: view.nodeName, rabbitmq_cluster_permanent_id: `warren-${view.nodeName}` }, 1],
    ]);
    gauge('rabbitmq_build_info', 'RabbitMQ & Erlang/OTP version info', ['rabbitmq_version', 'prometheus_plugin_version', 'prometheus_client_version', 'erlang_version', 'product'], () => [
      [{ rabbitmq_version: RABBITMQ_COMPATIBLE_VERSION, prometheus_plugin_version: RABBITMQ_COMPATIBLE_VERSION, prometheus_client_version: 'prom-client', erlang_version: process.version, product: 'Warren' }, 1],
    ]);

    // ---- objects -----------------------------------------------------------------------------
    gauge('rabbitmq_connections', 'Connections currently open', [], () => one(objectCounts(view).connections));
    gauge('rabbitmq_channels', 'Channels currently open', [], () => one(objectCounts(view).channels));
    gauge('rabbitmq_consumers', 'Consumers currently connected', [], () => one(objectCounts(view).consumers));
    gauge('rabbitmq_queues', 'Queues available', [], () => one(objectCounts(view).queues));
    const churn = view.sampler.churn;
    counter('rabbitmq_connections_opened_total', 'Total number of connections opened', [], () => one(churn.connectionCreated));
    counter('rabbitmq_connections_closed_total', 'Total number of connections closed or terminated', [], () => one(churn.connectionClosed));
    counter('rabbitmq_channels_opened_total', 'Total number of channels opened', [], () => one(churn.channelCreated));
    counter('rabbitmq_channels_closed_total', 'Total number of channels closed', [], () => one(churn.channelClosed));
    counter('rabbitmq_queues_declared_total', 'Total number of queues declared', [], () => one(churn.queueDeclared));
    counter('rabbitmq_queues_created_total', 'Total number of queues created', [], () => one(churn.queueCreated));
    counter('rabbitmq_queues_deleted_total', 'Total number of queues deleted', [], () => one(churn.queueDeleted));

    // ---- resources ---------------------------------------------------------------------------
    gauge('rabbitmq_process_open_fds', 'Open file descriptors', [], () => one(fileDescriptors().used));
    gauge('rabbitmq_process_max_fds', 'Open file descriptors limit', [], () => one(fileDescriptors().total));
    gauge('rabbitmq_process_open_tcp_sockets', 'Open TCP sockets', [], () => one(openConnections(view).length));
    gauge('rabbitmq_process_max_tcp_sockets', 'Open TCP sockets limit', [], () => one(Math.floor(fileDescriptors().total * 0.9)));
    gauge('rabbitmq_process_resident_memory_bytes', 'Memory used in bytes', [], () => one(process.memoryUsage.rss()));
    gauge('rabbitmq_resident_memory_limit_bytes', 'Memory high watermark in bytes', [], () => one(view.resources().memoryLimit));
    gauge('rabbitmq_disk_space_available_bytes', 'Disk space available in bytes', [], () => one(Math.max(0, view.resources().diskFree)));
    gauge('rabbitmq_disk_space_available_limit_bytes', 'Free disk space low watermark in bytes', [], () => one(view.resources().diskFreeLimit));
    gauge('rabbitmq_alarms_memory_used_watermark', 'is 1 if VM memory watermark alarm is in effect', [], () => one(view.resources().memoryAlarm ? 1 : 0));
    gauge('rabbitmq_alarms_free_disk_space_watermark', 'is 1 if free disk space watermark alarm is in effect', [], () => one(view.resources().diskAlarm ? 1 : 0));
    gauge('rabbitmq_alarms_file_descriptor_limit', 'is 1 if file descriptor limit alarm is in effect', [], () => one(0));
    gauge('rabbitmq_erlang_uptime_seconds', 'Node uptime', [], () => one((Date.now() - view.startedAt) / 1000));

    // ---- queues ------------------------------------------------------------------------------
    const queueLabels = perObject ? ['vhost', 'queue'] : [];
    const perQueue = (read: (q: Queue) => number): Read => () => {
      const samples: Sample[] = [];
      let sum = 0;
      for (const v of view.vhosts.values()) {
        for (const q of v.queues.values()) {
          const value = read(q);
          if (perObject) samples.push([{ vhost: v.name, queue: q.name }, value]);
          else sum += value;
        }
      }
      return perObject ? samples : one(sum);
    };
    gauge('rabbitmq_queue_messages_ready', 'Messages ready to be delivered to consumers', queueLabels, perQueue((q) => q.messageCount));
    gauge('rabbitmq_queue_messages_unacked', 'Messages delivered to consumers but not yet acknowledged', queueLabels, perQueue((q) => q.unackedCount));
    gauge('rabbitmq_queue_messages', 'Sum of ready and unacknowledged messages - total queue depth', queueLabels, perQueue((q) => q.messageCount + q.unackedCount));
    gauge('rabbitmq_queue_consumers', 'Consumers on a queue', queueLabels, perQueue((q) => q.consumerCount));
    gauge('rabbitmq_queue_messages_ready_bytes', 'Size in bytes of ready messages', queueLabels, perQueue((q) => q.byteSize));
    gauge('rabbitmq_queue_messages_paged_out', 'Messages paged out to disk', queueLabels, perQueue((q) => q.pagedOutCount));
    gauge('rabbitmq_queue_messages_paged_out_bytes', 'Size in bytes of messages paged out to disk', queueLabels, perQueue((q) => q.pagedOutBytes));
    gauge('rabbitmq_queue_messages_ram', 'Ready and unacknowledged messages stored in memory', queueLabels, perQueue((q) => q.messageCount - q.pagedOutCount + q.unackedCount));
    counter('rabbitmq_queue_messages_published_total', 'Total number of messages published to queues', queueLabels, perQueue((q) => q.stats.publish));

    // ---- channels ----------------------------------------------------------------------------
    const channelLabels = perObject ? ['channel'] : [];
    const perChannel = (read: (ch: Channel) => number): Read => () => {
      const samples: Sample[] = [];
      let sum = 0;
      for (const c of openConnections(view)) {
        for (const ch of c.channels.values()) {
          const value = read(ch);
          if (perObject) samples.push([{ channel: channelName(ch) }, value]);
          else sum += value;
        }
      }
      return perObject ? samples : one(sum);
    };
    const chCounter = (name: string, help: string, field: keyof ChannelCounters) =>
      counter(name, help, channelLabels, perChannel((ch) => ch.stats[field] as number));
    gauge('rabbitmq_channel_consumers', 'Consumers on a channel', channelLabels, perChannel((ch) => ch.consumers.size));
    gauge('rabbitmq_channel_messages_unacked', 'Delivered but not yet acknowledged messages', channelLabels, perChannel((ch) => ch.unacked.size));
    gauge('rabbitmq_channel_messages_unconfirmed', 'Published but not yet confirmed messages', channelLabels, perChannel((ch) => ch.unconfirmedCount));
    gauge('rabbitmq_channel_messages_uncommitted', 'Messages received in a transaction but not yet committed', channelLabels, perChannel((ch) => ch.txPublishes.length));
    gauge('rabbitmq_channel_acks_uncommitted', 'Message acknowledgements in a transaction not yet committed', channelLabels, perChannel((ch) => ch.txSettlements.length));
    gauge('rabbitmq_consumer_prefetch', 'Limit of unacknowledged messages for each consumer', channelLabels, perChannel((ch) => ch.consumerPrefetch));
    gauge('rabbitmq_channel_prefetch', 'Total limit of unacknowledged messages for all consumers on a channel', channelLabels, perChannel((ch) => ch.channelPrefetch));
    chCounter('rabbitmq_channel_messages_published_total', 'Total number of messages published into an exchange on a channel', 'publish');
    chCounter('rabbitmq_channel_messages_confirmed_total', 'Total number of messages published into an exchange and confirmed on the channel', 'confirm');
    chCounter('rabbitmq_channel_messages_unroutable_returned_total', 'Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable', 'returnUnroutable');
    chCounter('rabbitmq_channel_messages_unroutable_dropped_total', 'Total number of messages published as non-mandatory into an exchange and dropped as unroutable', 'dropUnroutable');
    chCounter('rabbitmq_channel_get_ack_total', 'Total number of messages fetched with basic.get in manual acknowledgement mode', 'get');
    chCounter('rabbitmq_channel_get_total', 'Total number of messages fetched with basic.get in automatic acknowledgement mode', 'getNoAck');
    chCounter('rabbitmq_channel_messages_delivered_ack_total', 'Total number of messages delivered to consumers in manual acknowledgement mode', 'deliver');
    chCounter('rabbitmq_channel_messages_delivered_total', 'Total number of messages delivered to consumers in automatic acknowledgement mode', 'deliverNoAck');
    chCounter('rabbitmq_channel_messages_redelivered_total', 'Total number of messages redelivered to consumers', 'redeliver');
    chCounter('rabbitmq_channel_messages_acked_total', 'Total number of messages acknowledged by consumers', 'ack');
    chCounter('rabbitmq_channel_get_empty_total', 'Total number of times basic.get operations fetched no message', 'getEmpty');

    // ---- connections -------------------------------------------------------------------------
    const connectionLabels = perObject ? ['connection'] : [];
    const perConnection = (read: (c: Connection) => number): Read => () => {
      const samples: Sample[] = [];
      let sum = 0;
      for (const c of openConnections(view)) {
        const value = read(c);
        if (perObject) samples.push([{ connection: connectionName(c) }, value]);
        else sum += value;
      }
      return perObject ? samples : one(sum);
    };
    counter('rabbitmq_connection_incoming_bytes_total', 'Total number of bytes received on a connection', connectionLabels, perConnection((c) => c.stats.recvOct));
    counter('rabbitmq_connection_outgoing_bytes_total', 'Total number of bytes sent on a connection', connectionLabels, perConnection((c) => c.out.bytesWritten));
    counter('rabbitmq_connection_incoming_packets_total', 'Total number of packets received on a connection', connectionLabels, perConnection((c) => c.stats.recvCnt));
    counter('rabbitmq_connection_outgoing_packets_total', 'Total number of packets sent on a connection', connectionLabels, perConnection((c) => c.out.sends));
    gauge('rabbitmq_connection_pending_packets', 'Number of packets waiting to be sent on a connection', connectionLabels, perConnection((c) => (c.socket as { writableLength?: number }).writableLength ?? 0));
    gauge('rabbitmq_connection_channels', 'Channels on a connection', connectionLabels, perConnection((c) => c.channels.size));

    // ---- broker-wide counters (monotonic: closed channels keep counting) ------------------------
    const g = view.sampler.global.messages;
    gauge('rabbitmq_global_consumers', 'Current number of consumers', ['protocol'], () => [[AMQP, objectCounts(view).consumers]]);
    gauge('rabbitmq_global_publishers', 'Current number of publishers', ['protocol'], () => [
      [AMQP, openConnections(view).reduce((n, c) => n + [...c.channels.values()].filter((ch) => ch.stats.publish > 0).length, 0)],
    ]);
    const amqp = (name: string, help: string, read: () => number) => counter(name, help, ['protocol'], () => [[AMQP, read()]]);
    const classic = (name: string, help: string, read: () => number) => counter(name, help, ['protocol', 'queue_type'], () => [[CLASSIC, read()]]);
    amqp('rabbitmq_global_messages_received_total', 'Total number of messages received from publishers', () => g.publish);
    amqp('rabbitmq_global_messages_received_confirm_total', 'Total number of messages received from publishers expecting confirmations', () => g.publishConfirm);
    amqp('rabbitmq_global_messages_routed_total', 'Total number of messages routed to queues or streams', () => g.routed);
    amqp('rabbitmq_global_messages_unroutable_dropped_total', 'Total number of messages published as non-mandatory into an exchange and dropped as unroutable', () => g.dropUnroutable);
    amqp('rabbitmq_global_messages_unroutable_returned_total', 'Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable', () => g.returnUnroutable);
    amqp('rabbitmq_global_messages_confirmed_total', 'Total number of messages confirmed to publishers', () => g.confirm);
    classic('rabbitmq_global_messages_delivered_total', 'Total number of messages delivered to consumers', () => g.deliver + g.deliverNoAck + g.get + g.getNoAck);
    classic('rabbitmq_global_messages_delivered_consume_manual_ack_total', 'Total number of messages delivered to consumers using basic.consume with manual acknowledgment', () => g.deliver);
    classic('rabbitmq_global_messages_delivered_consume_auto_ack_total', 'Total number of messages delivered to consumers using basic.consume with automatic acknowledgment', () => g.deliverNoAck);
    classic('rabbitmq_global_messages_delivered_get_manual_ack_total', 'Total number of messages delivered to consumers using basic.get with manual acknowledgment', () => g.get);
    classic('rabbitmq_global_messages_delivered_get_auto_ack_total', 'Total number of messages delivered to consumers using basic.get with automatic acknowledgment', () => g.getNoAck);
    classic('rabbitmq_global_messages_get_empty_total', 'Total number of times basic.get operations fetched no message', () => g.getEmpty);
    classic('rabbitmq_global_messages_redelivered_total', 'Total number of messages redelivered to consumers', () => g.redeliver);
    classic('rabbitmq_global_messages_acknowledged_total', 'Total number of messages acknowledged by consumers', () => g.ack);

    // ---- Warren's own ------------------------------------------------------------------------
    gauge('warren_store_size_bytes', 'Bytes the store takes on disk (the data directory); 0 with an in-memory store', [], async () => one(await this.dataDirSize()));
    gauge('warren_messages_paged_out', 'Ready messages held only in the store (paged out of memory), all queues', [], () => one(sumQueues(view, (q) => q.pagedOutCount)));
    gauge('warren_messages_paged_out_bytes', 'Body bytes of the messages paged out of memory, all queues', [], () => one(sumQueues(view, (q) => q.pagedOutBytes)));
    counter('warren_messages_quarantined_total', 'Messages that could not be read back (checksum mismatch, truncated), moved to quarantine/ in the data directory and dropped from their queue', ['source'], () => [
      [{ source: 'stored' }, view.core.store.quarantinedMessages],
      [{ source: 'spill' }, view.core.store.spill.quarantinedMessages],
    ]);
    gauge('warren_queues_paging', 'Queues whose backlog is partly paged out to the store', [], () => one(sumQueues(view, (q) => (q.pagedOutCount > 0 ? 1 : 0))));
    gauge('warren_connections_blocked', 'Publishing connections blocked by a resource alarm (connection.blocked)', [], () => one(openConnections(view).filter((c) => c.blocked).length));
    gauge('warren_connections_flow', 'Publishing connections held by flow control until the store catches up (state flow)', [], () => one(openConnections(view).filter((c) => c.flow).length));
    // a cluster node's role and replication (no samples on a single node); the leader serves
    // the metrics, so its followers are seen from its side
    const cluster = () => view.clusterStatus();
    const followers = () => {
      const r = cluster()?.replication;
      return r?.role === 'leader' ? r.followers : [];
    };
    gauge('warren_cluster_role', 'This node\'s role in its cluster on etcd (1 for the role it has)', ['node_id', 'role'], () => {
      const c = cluster();
      return c === null ? [] : (['leader', 'follower', 'starting'] as const).map((role) => [{ node_id: c.nodeId, role }, c.role === role ? 1 : 0] as const);
    });
    gauge('warren_cluster_term', 'The leader\'s term (the create revision of its etcd election key: it increases with every new leader)', [], () => {
      const t = cluster()?.term;
      return t === null || t === undefined ? [] : one(t);
    });
    gauge('warren_cluster_isr_members', 'Nodes in the in-sync replica set, the leader included', [], () => {
      const c = cluster();
      return c === null ? [] : one(c.isr.length);
    });
    gauge('warren_cluster_replication_lag_records', 'Committed records not yet in this node\'s store (a follower), or the largest lag of the leader\'s followers', [], () => {
      const c = cluster();
      return c === null ? [] : one(c.lag);
    });
    gauge('warren_cluster_follower_replication_lag_records', 'Committed records a follower has not acked yet, as the leader sees it', ['follower'], () =>
      followers().map((f) => [{ follower: f.id }, f.lag] as const),
    );
    gauge('warren_cluster_follower_in_sync', 'Whether a follower is in the in-sync replica set (1) or not (0)', ['follower'], () =>
      followers().map((f) => [{ follower: f.id }, f.inIsr ? 1 : 0] as const),
    );
    gauge('warren_cluster_follower_connected', 'Whether a follower\'s replication link to the leader is up (1) or not (0)', ['follower'], () =>
      followers().map((f) => [{ follower: f.id }, f.connected ? 1 : 0] as const),
    );
    gauge('warren_stats_interval_seconds', 'Seconds between statistics ticks (rates are per second over one tick)', [], () => one(view.sampler.intervalMs / 1000));
  }

  /** The data directory's size on disk, measured at most every STORE_SIZE_TTL_MS. */
  private async dataDirSize(): Promise<number> {
    const dir = this.view.config.dataDir;
    if (dir === null) return 0;
    const now = Date.now();
    if (this.storeSize !== null && now - this.storeSize.at < STORE_SIZE_TTL_MS) return this.storeSize.bytes;
    const bytes = await directorySize(dir).catch(() => 0);
    this.storeSize = { at: now, bytes };
    return bytes;
  }
}

function openConnections(view: BrokerView): Connection[] {
  return [...view.connectionList()].filter((c) => c.isOpen);
}

function sumQueues(view: BrokerView, read: (q: Queue) => number): number {
  let n = 0;
  for (const v of view.vhosts.values()) for (const q of v.queues.values()) n += read(q);
  return n;
}

async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await directorySize(p);
    else if (e.isFile()) total += (await stat(p)).size;
  }
  return total;
}
