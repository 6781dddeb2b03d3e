export { startBroker, WARREN_VERSION } from './broker.js';
export type { BrokerOptions, RunningBroker } from './broker.js';
export type { WarrenConfig, UserConfig } from './config/config.js';
