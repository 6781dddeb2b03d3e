export { startBroker, WARREN_VERSION } from './broker.js';
export type { BrokerOptions, RunningBroker } from './broker.js';
export type { WarrenConfig, UserConfig } from './config/config.js';
export type { BrokerAdmin } from './operations/broker-admin.js';
export type { UserSettings, VhostSettings, PermissionSettings, TopicPermissionSettings, VhostLimitSettings, VhostInfo } from './operations/access-admin.js';
export type { DefinitionsReport } from './operations/definitions.js';
export { startWarren, readClusterStatus } from './start.js';
export type { ClusterNodeStatus, RunningClusterNode } from './cluster-node.js';
