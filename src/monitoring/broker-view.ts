import type { WarrenConfig } from '../config/config.js';
import type { Connection } from '../connection/connection.js';
import type { Core } from '../operations/core.js';
import type { Vhost } from '../vhost/vhost.js';
import type { StatsSampler } from './sampler.js';

/** A listener the broker runs (RabbitMQ's /api/overview `listeners`). */
export interface Listener {
  readonly protocol: 'amqp' | 'amqp/ssl' | 'http' | 'http/prometheus';
  readonly ip: string;
  readonly port: number;
}

/** Resource use and alarms, as /api/nodes and the metrics report them. */
export interface ResourceStatus {
  readonly memoryUsed: number;
  /** bytes; 0 when the memory alarm is off */
  readonly memoryLimit: number;
  readonly memoryAlarm: boolean;
  /** bytes free on the data dir's disk; -1 when not measured */
  readonly diskFree: number;
  readonly diskFreeLimit: number;
  readonly diskAlarm: boolean;
}

/** A follower as the leader sees it (ClusterNodeStatus.replication.followers, cluster-node.ts). */
export interface ClusterFollowerView {
  readonly id: string;
  readonly connected: boolean;
  /** the last record the follower acked (in its log, fsynced) */
  readonly matchSeq: number;
  /** committed records the follower has not acked yet */
  readonly lag: number;
  readonly inIsr: boolean;
}

/** This node's place in a cluster on etcd, as the management API and the metrics show it. */
export interface ClusterStatusView {
  readonly nodeId: string;
  readonly role: 'leader' | 'follower' | 'starting';
  readonly term: number | null;
  readonly leader: string | null;
  readonly isr: readonly string[];
  /** records committed but not yet in this node's store (follower), or the largest follower lag (leader) */
  readonly lag: number;
  readonly replication:
    | { readonly role: 'leader'; readonly commitSeq: number; readonly appliedSeq: number; readonly followers: readonly ClusterFollowerView[] }
    | { readonly role: 'follower'; readonly commitSeq: number; readonly appliedSeq: number }
    | null;
}

/**
 * What the management API, the dashboard and the metrics exporter read: the running
 * broker seen from above (the Broker implements it). Reading only; changes go through
 * the broker's operations.
 */
export interface BrokerView {
  readonly config: WarrenConfig;
  readonly version: string;
  /** RabbitMQ's node name form, `rabbit@<host>`: tools ask for /api/nodes/rabbit@<host> */
  readonly nodeName: string;
  /** ms since the epoch */
  readonly startedAt: number;
  readonly vhosts: ReadonlyMap<string, Vhost>;
  /** users, permissions and the operations' state: logins and access checks go through it */
  readonly core: Core;
  readonly sampler: StatsSampler;
  connectionList(): Iterable<Connection>;
  listeners(): readonly Listener[];
  resources(): ResourceStatus;
  /** this node's cluster status; null on a single node (no --cluster-etcd) */
  clusterStatus(): ClusterStatusView | null;
}
