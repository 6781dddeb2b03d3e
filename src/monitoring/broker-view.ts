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
}
