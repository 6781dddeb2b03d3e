import { startBroker, type BrokerOptions, type RunningBroker } from './broker.js';
import type { RunningClusterNode } from './cluster/cluster-node.js';
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
  const config = resolveConfig({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...overrides });
  const { startClusterNode } = await import('./cluster/cluster-node.js');
  return startClusterNode(config, logger ?? createLogger(config.logLevel));
}
