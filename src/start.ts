import { startBroker, type BrokerOptions, type RunningBroker } from './broker.js';
import type { RunningClusterNode } from './cluster-node.js';
import { resolveConfig } from './config/config.js';
import { createLogger } from './logging/logger.js';

/**
 * Starts what the configuration asks for: a single broker, or (with `cluster`) a cluster
 * node. Without `cluster` this is exactly startBroker(): the same code path, no etcd, and
 * the clustering code is not even loaded.
 */
export async function startWarren(options: BrokerOptions = {}): Promise<RunningBroker | RunningClusterNode> {
  if (options.cluster === undefined || options.cluster === null) return startBroker(options);
  const { logger, ...overrides } = options;
  // the library defaults of startBroker(): no management API or metrics unless asked for
  const config = resolveConfig({ host: '127.0.0.1', port: 0, logLevel: 'silent', managementPort: null, metricsPort: null, ...overrides });
  const { startClusterNode } = await import('./cluster-node.js');
  return startClusterNode(config, logger ?? createLogger(config.logLevel));
}

/** `warren cluster status`: the cluster as etcd describes it (loads the etcd client only now). */
export async function readClusterStatus(etcd: readonly string[], clusterName: string): Promise<import('./cluster/etcd-coordinator.js').ClusterStatus> {
  return (await import('./cluster/etcd-coordinator.js')).readClusterStatus(etcd, clusterName);
}
