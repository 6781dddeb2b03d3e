/**
 * Which folder of src/ may import which (docs/architecture.md explains them). A folder
 * always may import its own files. Root files (broker.ts, index.ts) are named without .ts.
 */
const PROTOCOL = ['protocol'];
const STORE = [...PROTOCOL, 'store'];
const MODEL = [...STORE, 'message', 'routing', 'queue', 'delayed', 'vhost', 'auth', 'stats'];
const UTIL = ['config', 'logging'];

export const ALLOWED_IMPORTS: Record<string, readonly string[]> = {
  // pure: bytes in, values out
  protocol: [],
  // leaf utilities
  config: [],
  logging: [],
  alarms: [],
  transport: [],
  // message statistics: plain counters the model and the AMQP front end increment
  stats: [],
  // storage: knows records, not the model
  store: PROTOCOL,
  // clustering wraps the store (issue: HA on etcd)
  cluster: [...STORE, ...UTIL],
  // the model, lowest first: each may import the ones listed
  message: PROTOCOL,
  routing: PROTOCOL,
  queue: [...STORE, 'message', 'stats'],
  delayed: [...STORE, 'message', 'queue'],
  vhost: [...STORE, 'message', 'routing', 'queue', 'delayed', 'stats'],
  auth: STORE,
  // every operation, its access checks and its commit waiting
  operations: [...MODEL, ...UTIL],
  // front ends: call operations; may hold model objects they are handed (deliveries, acks), never the store
  connection: [...PROTOCOL, 'message', 'routing', 'queue', 'vhost', 'operations', 'transport', 'stats', ...UTIL],
  // what the HTTP front ends read: the stats tick, the broker seen from above (it lists the
  // AMQP connections and channels, so it may read connection/), shared HTTP helpers
  monitoring: [...PROTOCOL, 'message', 'routing', 'queue', 'vhost', 'operations', 'connection', 'stats', ...UTIL],
  management: [...PROTOCOL, 'message', 'routing', 'queue', 'vhost', 'operations', 'connection', 'monitoring', 'stats', ...UTIL],
  metrics: [...PROTOCOL, 'queue', 'vhost', 'operations', 'connection', 'monitoring', 'stats', ...UTIL],
  cli: [...UTIL, 'index'],
  // composition root and public entry point: anything
  broker: ['*'],
  index: ['*'],
  // a cluster node composes the broker, the replicated store and the listeners; start picks it or a broker
  'cluster-node': ['*'],
  start: ['*'],
};
