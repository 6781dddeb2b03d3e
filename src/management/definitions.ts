import { RABBITMQ_COMPATIBLE_VERSION } from '../connection/server-properties.js';
import type { BrokerView } from '../monitoring/broker-view.js';
import { fieldTableJson, vhostBindings } from './format.js';

type Json = Record<string, unknown>;

/** Exchanges every vhost has: RabbitMQ does not export them. */
function builtIn(name: string): boolean {
  return name === '' || name.startsWith('amq.');
}

/**
 * The broker's definitions in RabbitMQ's export format (GET /api/definitions): what
 * `rabbitmqadmin export`, `warren ctl export_definitions` and RabbitMQ's import read.
 * Users carry their password hashes. Exclusive queues and built-in exchanges are left out,
 * as RabbitMQ does. With `vhost`, the per-vhost form: topology and parameters of that vhost,
 * without the `vhost` keys.
 */
export function exportDefinitions(view: BrokerView, vhost: string | null): Json {
  const core = view.core;
  const access = core.access;
  const vhosts = [...core.vhosts.values()].filter((v) => vhost === null || v.name === vhost).sort((a, b) => a.name.localeCompare(b.name));
  const withVhost = (name: string, item: Json): Json => (vhost === null ? { ...item, vhost: name } : item);
  const queues: Json[] = [];
  const exchanges: Json[] = [];
  const bindings: Json[] = [];
  const parameters: Json[] = [];
  for (const v of vhosts) {
    for (const q of v.queues.values()) {
      if (q.exclusive) continue;
      queues.push(withVhost(v.name, { name: q.name, durable: q.durable, auto_delete: q.options.autoDelete, arguments: fieldTableJson(q.options.arguments) }));
    }
    for (const x of v.exchanges.values()) {
      if (builtIn(x.name)) continue;
      exchanges.push(
        withVhost(v.name, { name: x.name, type: x.type, durable: x.durable, auto_delete: x.options.autoDelete, internal: x.options.internal, arguments: fieldTableJson(x.options.arguments) }),
      );
    }
    for (const b of vhostBindings(v)) {
      if (b.source === '') continue;
      bindings.push(withVhost(v.name, { source: b.source, destination: b.destination, destination_type: b.destination_type, routing_key: b.routing_key, arguments: b.arguments }));
    }
    const limits = access.vhostLimits.get(v.name);
    if (limits !== undefined && (limits.maxConnections !== undefined || limits.maxQueues !== undefined)) {
      const value: Json = {};
      if (limits.maxQueues !== undefined) value['max-queues'] = limits.maxQueues;
      if (limits.maxConnections !== undefined) value['max-connections'] = limits.maxConnections;
      parameters.push({ value, vhost: v.name, component: 'vhost-limits', name: 'limits' });
    }
  }
  const version = { rabbit_version: RABBITMQ_COMPATIBLE_VERSION, rabbitmq_version: RABBITMQ_COMPATIBLE_VERSION, product_name: 'Warren', product_version: view.version };
  const policies = core.policies.list(vhost, false).map((p) => withVhost(p.vhost, { name: p.name, pattern: p.pattern, 'apply-to': p.applyTo, definition: { ...p.definition }, priority: p.priority }));
  for (const p of core.policies.list(vhost, true)) {
    parameters.push({ value: { pattern: p.pattern, definition: { ...p.definition }, priority: p.priority, 'apply-to': p.applyTo }, vhost: p.vhost, component: 'operator_policy', name: p.name });
  }
  if (vhost !== null) return { rabbit_version: RABBITMQ_COMPATIBLE_VERSION, parameters, policies, queues, exchanges, bindings };
  return {
    ...version,
    users: [...access.users.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((u) => ({ name: u.name, password_hash: u.passwordHash, hashing_algorithm: u.hashingAlgorithm, tags: [...u.tags], limits: {} })),
    vhosts: vhosts.map((v) => ({ name: v.name })),
    permissions: access.allPermissions().map((p) => ({ user: p.user, vhost: p.vhost, configure: p.configure, write: p.write, read: p.read })),
    topic_permissions: access.allTopicPermissions().map((p) => ({ user: p.user, vhost: p.vhost, exchange: p.exchange, write: p.write, read: p.read })),
    parameters,
    global_parameters: [{ name: 'cluster_name', value: view.nodeName }],
    policies,
    queues,
    exchanges,
    bindings,
  };
}
