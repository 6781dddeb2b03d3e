/**
 * Which folder of src/ may import which (docs/architecture.md explains them). A folder
 * always may import its own files. Root files (broker.ts, index.ts) are named without .ts.
 * Folders that do not exist yet (management, cluster) are listed so their rules are set
 * before their code arrives.
 */
const PROTOCOL = ['protocol'];
const STORE = [...PROTOCOL, 'store'];
const MODEL = [...STORE, 'message', 'routing', 'queue', 'delayed', 'vhost', 'auth'];
const UTIL = ['config', 'logging'];

export const ALLOWED_IMPORTS: Record<string, readonly string[]> = {
  // pure: bytes in, values out
  protocol: [],
  // leaf utilities
  config: [],
  logging: [],
  alarms: [],
  transport: [],
  // storage: knows records, not the model
  store: PROTOCOL,
  // clustering wraps the store (issue: HA on etcd)
  cluster: [...STORE, ...UTIL],
  // the model, lowest first: each may import the ones listed
  message: PROTOCOL,
  routing: PROTOCOL,
  queue: [...STORE, 'message'],
  delayed: [...STORE, 'message', 'queue'],
  vhost: [...STORE, 'message', 'routing', 'queue', 'delayed'],
  auth: STORE,
  // every operation, its access checks and its commit waiting
  operations: [...MODEL, ...UTIL],
  // front ends: call operations; may hold model objects they are handed (deliveries, acks), never the store
  connection: [...PROTOCOL, 'message', 'routing', 'queue', 'vhost', 'operations', 'transport', ...UTIL],
  management: [...PROTOCOL, 'message', 'routing', 'queue', 'vhost', 'operations', ...UTIL],
  cli: [...UTIL, 'index'],
  // composition root and public entry point: anything
  broker: ['*'],
  index: ['*'],
};
