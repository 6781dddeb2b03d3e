import { putPolicy } from './policies.js';
import { AmqpChannelError } from '../protocol/errors.js';
import { fieldTableFromJs } from '../protocol/field-table.js';
import type { FieldTable } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';
import * as admin from './access-admin.js';
import { Completion } from './completion.js';
import { bindExchange, declareExchange } from './exchanges.js';
import { checkAdministrator } from './permissions.js';
import { bindQueue, declareQueue } from './queues.js';
import { Session, type Actor } from './session.js';

/**
 * RabbitMQ's definitions (the JSON of `rabbitmqctl export_definitions`, the management API's
 * /api/definitions, `load_definitions`): what Warren imports today. Users keep their
 * password hashes, so they log in with their RabbitMQ passwords.
 */
export interface DefinitionsReport {
  readonly users: number;
  readonly vhosts: number;
  readonly permissions: number;
  readonly topicPermissions: number;
  readonly limits: number;
  readonly exchanges: number;
  readonly queues: number;
  readonly bindings: number;
  /** what the file holds that Warren does not import yet (policies, other parameters) */
  readonly skipped: readonly string[];
}

type Json = Record<string, unknown>;

function invalid(text: string): AmqpChannelError {
  return new AmqpChannelError(ReplyCode.PreconditionFailed, `invalid definitions: ${text}`);
}

function list(defs: Json, key: string): Json[] {
  const v = defs[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) {
    throw invalid(`'${key}' must be a list of objects`);
  }
  return v as Json[];
}

function str(o: Json, key: string, where: string, fallback?: string): string {
  const v = o[key] ?? fallback;
  if (typeof v !== 'string') throw invalid(`${where}: '${key}' must be a string`);
  return v;
}

function bool(o: Json, key: string, fallback: boolean): boolean {
  const v = o[key];
  return typeof v === 'boolean' ? v : fallback;
}

function args(o: Json, where: string): FieldTable {
  const v = o.arguments ?? {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${where}: 'arguments' must be an object`);
  return fieldTableFromJs(v as Json);
}

/** RabbitMQ writes tags as a list (3.9+) or a comma-separated string (older exports). */
function tags(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((t): t is string => typeof t === 'string');
  if (typeof v === 'string') return v.split(',').map((t) => t.trim()).filter((t) => t !== '');
  return [];
}

function wrap<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof AmqpChannelError) throw new AmqpChannelError(err.replyCode, `${where}: ${err.replyText}`);
    throw err;
  }
}

/**
 * Imports definitions in RabbitMQ's order: vhosts, users, permissions, topic permissions,
 * vhost limits (parameters of component vhost-limits), queues, exchanges, bindings. Like
 * RabbitMQ it creates or updates (a queue that exists must be equivalent: 406 otherwise).
 * Needs the administrator tag. Settles once everything is durable.
 */
export function importDefinitions(actor: Actor, defs: unknown): Completion<DefinitionsReport> {
  checkAdministrator(actor);
  if (typeof defs !== 'object' || defs === null || Array.isArray(defs)) throw invalid('expected a JSON object');
  const d = defs as Json;
  const core = actor.core;
  const skipped: string[] = [];

  const vhosts = list(d, 'vhosts');
  for (const v of vhosts) {
    const name = str(v, 'name', 'vhost');
    const meta = (typeof v.metadata === 'object' && v.metadata !== null ? v.metadata : v) as Json;
    wrap(`vhost '${name}'`, () =>
      admin.putVhost(actor, name, { description: typeof meta.description === 'string' ? meta.description : '', tags: tags(meta.tags) }),
    );
  }
  const users = list(d, 'users');
  for (const u of users) {
    const name = str(u, 'name', 'user');
    wrap(`user '${name}'`, () =>
      admin.putUser(
        actor,
        name,
        typeof u.password === 'string'
          ? { password: u.password, tags: tags(u.tags) }
          : { passwordHash: str(u, 'password_hash', `user '${name}'`, ''), hashingAlgorithm: typeof u.hashing_algorithm === 'string' ? u.hashing_algorithm : undefined, tags: tags(u.tags) },
      ),
    );
  }
  const permissions = list(d, 'permissions');
  for (const p of permissions) {
    const user = str(p, 'user', 'permission');
    const vhost = str(p, 'vhost', 'permission');
    wrap(`permissions of '${user}' in vhost '${vhost}'`, () =>
      admin.setPermissions(actor, user, vhost, { configure: str(p, 'configure', 'permission'), write: str(p, 'write', 'permission'), read: str(p, 'read', 'permission') }),
    );
  }
  const topicPermissions = list(d, 'topic_permissions');
  for (const t of topicPermissions) {
    const user = str(t, 'user', 'topic permission');
    const vhost = str(t, 'vhost', 'topic permission');
    wrap(`topic permissions of '${user}' in vhost '${vhost}'`, () =>
      admin.setTopicPermissions(actor, user, vhost, { exchange: str(t, 'exchange', 'topic permission'), write: str(t, 'write', 'topic permission'), read: str(t, 'read', 'topic permission') }),
    );
  }
  let limits = 0;
  const policies: Array<{ p: Json; operator: boolean }> = [];
  for (const p of list(d, 'parameters')) {
    if (p.component === 'operator_policy') {
      // RabbitMQ exports operator policies as parameters of this component
      const v = (p.value ?? {}) as Json;
      policies.push({ p: { vhost: p.vhost, name: p.name, pattern: v.pattern, definition: v.definition, priority: v.priority, 'apply-to': v['apply-to'] }, operator: true });
      continue;
    }
    if (p.component !== 'vhost-limits') {
      skipped.push(`parameter ${String(p.component)}/${String(p.name)} in vhost '${String(p.vhost)}'`);
      continue;
    }
    const vhost = str(p, 'vhost', 'vhost-limits');
    const value = (p.value ?? {}) as Json;
    const num = (k: string): number | undefined => (typeof value[k] === 'number' ? (value[k] as number) : undefined);
    wrap(`limits of vhost '${vhost}'`, () => admin.setVhostLimits(actor, vhost, { maxConnections: num('max-connections'), maxQueues: num('max-queues') }));
    limits++;
  }
  for (const p of list(d, 'policies')) policies.push({ p, operator: false });
  for (const p of list(d, 'global_parameters')) {
    // RabbitMQ always exports its cluster name and internal id: nothing to carry over
    if (p.name !== 'cluster_name' && p.name !== 'internal_cluster_id') skipped.push(`global parameter '${String(p.name)}'`);
  }

  const session = (vhost: string): Session => {
    const v = core.vhosts.get(vhost);
    if (v === undefined) throw new AmqpChannelError(ReplyCode.NotFound, `no vhost '${vhost}'`);
    return new Session(core, actor.user, v, null);
  };
  const queues = list(d, 'queues');
  for (const q of queues) {
    const name = str(q, 'name', 'queue');
    const vhost = str(q, 'vhost', `queue '${name}'`);
    const where = `queue '${name}' in vhost '${vhost}'`;
    wrap(where, () =>
      declareQueue(session(vhost), { name, durable: bool(q, 'durable', true), exclusive: false, autoDelete: bool(q, 'auto_delete', false), arguments: args(q, where) }),
    );
  }
  const exchanges = list(d, 'exchanges');
  for (const x of exchanges) {
    const name = str(x, 'name', 'exchange');
    const vhost = str(x, 'vhost', `exchange '${name}'`);
    const where = `exchange '${name}' in vhost '${vhost}'`;
    if (name === '' || name.startsWith('amq.')) continue; // the predeclared ones
    wrap(where, () =>
      declareExchange(session(vhost), {
        name,
        type: str(x, 'type', where),
        durable: bool(x, 'durable', true),
        autoDelete: bool(x, 'auto_delete', false),
        internal: bool(x, 'internal', false),
        arguments: args(x, where),
      }),
    );
  }
  const bindings = list(d, 'bindings');
  for (const b of bindings) {
    const vhost = str(b, 'vhost', 'binding');
    const source = str(b, 'source', 'binding');
    const destination = str(b, 'destination', 'binding');
    const routingKey = str(b, 'routing_key', 'binding', '');
    const where = `binding ${source} → ${destination} in vhost '${vhost}'`;
    wrap(where, () => {
      const s = session(vhost);
      if (b.destination_type === 'exchange') bindExchange(s, { source, destination, routingKey, arguments: args(b, where) });
      else bindQueue(s, { queue: destination, exchange: source, routingKey, arguments: args(b, where) });
    });
  }
  // policies last: they apply at once to what was just declared
  for (const { p, operator } of policies) {
    const vhost = str(p, 'vhost', 'policy');
    const name = str(p, 'name', 'policy');
    wrap(`${operator ? 'operator policy' : 'policy'} '${name}' in vhost '${vhost}'`, () =>
      putPolicy(actor, vhost, name, { pattern: p.pattern, definition: p.definition, priority: p.priority, applyTo: p['apply-to'] }, operator),
    );
  }
  return Completion.afterCommit<DefinitionsReport>(
    {
      users: users.length,
      vhosts: vhosts.length,
      permissions: permissions.length,
      topicPermissions: topicPermissions.length,
      limits,
      exchanges: exchanges.length,
      queues: queues.length,
      bindings: bindings.length,
      skipped,
    },
    core.store,
  );
}
