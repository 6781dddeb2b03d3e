import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Message } from '../message/message.js';
import type { BrokerView } from '../monitoring/broker-view.js';
import {
  bindExchange,
  bindQueue,
  browseQueue,
  clearPermissions,
  clearTopicPermissions,
  clearVhostLimits,
  declareExchange,
  declareQueue,
  deleteExchange,
  deletePolicy,
  deleteQueue,
  deleteUser,
  deleteVhost,
  get as getOperation,
  importDefinitions,
  listPermissions,
  listPolicies,
  listTopicPermissions,
  listUsers,
  listVhosts,
  publish,
  PublishPermits,
  purgeQueue,
  putPolicy,
  putUser,
  putVhost,
  Session,
  setPermissions,
  setTopicPermissions,
  setVhostLimits,
  unbindExchange,
  unbindQueue,
  validateProperties,
  type Actor,
  type PublishOutput,
} from '../operations/index.js';
import { AmqpChannelError, AmqpConnectionError } from '../protocol/errors.js';
import { fieldTableFromJs } from '../protocol/field-table.js';
import type { FieldTable } from '../protocol/field-types.js';
import { encodeBasicProperties, type BasicProperties } from '../protocol/generated/properties.js';
import { ReplyCode } from '../protocol/reply-code.js';
import type { Queue } from '../queue/queue.js';
import { RouteSet } from '../routing/route-set.js';
import { ChannelCounters } from '../stats/counters.js';
import { canAccessVhost, isAdministrator, isManagementUser, isMonitor } from './auth.js';
import { exportDefinitions } from './definitions.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { fieldTableJson, propertiesKey, vhostBindings } from './format.js';
import { LIST_QUERY_SCHEMA, list, type ListQuery } from './listing.js';

type Json = Record<string, unknown>;

const str = { type: 'string' } as const;
/** rabbitmqadmin sends booleans and numbers as strings: both are accepted */
const boolish = { type: ['boolean', 'string'] } as const;
const intish = { type: ['integer', 'string'] } as const;
const obj = { type: 'object' } as const;

function params(...names: string[]) {
  return { type: 'object', required: names, properties: Object.fromEntries(names.map((n) => [n, str])) } as const;
}
function body(properties: Record<string, unknown>, required: string[] = []) {
  // extra keys (rabbitmqadmin adds vhost and name) are accepted and ignored
  return { type: 'object', required, properties } as const;
}

function bool(v: unknown, dflt: boolean, what: string): boolean {
  if (v === undefined || v === null || v === '') return dflt;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw badRequest(`${what} must be true or false`);
}

function int(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : /^-?[0-9]+$/.test(String(v)) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw badRequest(`${what} must be an integer`);
  return n;
}

function table(v: unknown, what: string): FieldTable {
  if (v === undefined || v === null || v === '') return new Map();
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(`${what} must be an object`);
  return fieldTableFromJs(v as Record<string, unknown>);
}

/** RabbitMQ's tags: a comma-separated string or a list. */
function tagList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.map(String);
  return String(v).split(',').map((t) => t.trim()).filter((t) => t !== '');
}

/**
 * An operation's error as RabbitMQ's management API answers it: access refused → 401
 * not_authorised; missing object → 404; invalid input, inequivalent redeclare, locked → 400
 * with the text as reason.
 */
export function apiErrorOf(err: unknown): unknown {
  if (!(err instanceof AmqpChannelError) && !(err instanceof AmqpConnectionError)) return err;
  switch (err.replyCode) {
    case ReplyCode.AccessRefused:
      return new ApiError(401, 'not_authorised', err.replyText);
    case ReplyCode.NotFound:
      return new ApiError(404, 'Object Not Found', 'Not Found');
    default:
      return badRequest(err.replyText);
  }
}

async function run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw apiErrorOf(err);
  }
}

/**
 * The part of the API that changes the broker: every change goes through the operations
 * layer (the same functions, permission checks and commit waiting as AMQP), and answers with
 * RabbitMQ's status codes (201 created, 204 updated or deleted).
 */
export function registerWriteRoutes(app: FastifyInstance, view: BrokerView): void {
  const core = view.core;
  const actor = (req: FastifyRequest): Actor => ({ core, user: req.principal });
  const requireAdmin = (req: FastifyRequest): void => {
    if (!isAdministrator(req.principal)) throw new ApiError(401, 'not_authorised', 'Not administrator user');
  };
  /** A session of the principal in a vhost: 404 for a missing vhost, 401 without access. */
  const session = (req: FastifyRequest, vhost: string): Session => {
    const v = core.vhosts.get(vhost);
    if (v === undefined) throw new ApiError(404, 'not_found', 'vhost_not_found');
    if (!canAccessVhost(view, req.principal, vhost)) throw new ApiError(401, 'not_authorised', 'User not authorised to access virtual host');
    // monitoring-only users read; they change nothing
    if (!isManagementUser(req.principal)) throw new ApiError(401, 'not_authorised', 'Not management user');
    return new Session(core, req.principal, v, null);
  };
  const created = (reply: FastifyReply, existed: boolean) => reply.code(existed ? 204 : 201).send();

  // ---- users ---------------------------------------------------------------------------------

  const userJson = (u: { name: string; passwordHash: string; hashingAlgorithm: string; tags: readonly string[] }) => ({
    name: u.name,
    password_hash: u.passwordHash,
    hashing_algorithm: u.hashingAlgorithm,
    tags: [...u.tags],
    limits: {},
  });
  app.get('/api/users', { schema: { querystring: LIST_QUERY_SCHEMA } }, async (req: FastifyRequest<{ Querystring: ListQuery }>) => {
    requireAdmin(req);
    return list((await run(() => listUsers(actor(req)))).map(userJson), req.query, ['name']);
  });
  app.get('/api/users/without-permissions', async (req) => {
    requireAdmin(req);
    const withPerms = new Set(listPermissions(actor(req)).map((p) => p.user));
    return listUsers(actor(req)).filter((u) => !withPerms.has(u.name)).map(userJson);
  });
  app.get('/api/users/:name', { schema: { params: params('name') } }, async (req: FastifyRequest<{ Params: { name: string } }>) => {
    requireAdmin(req);
    const u = core.access.users.get(req.params.name);
    if (u === undefined) throw notFound();
    return userJson(u);
  });
  app.put(
    '/api/users/:name',
    { schema: { params: params('name'), body: body({ password: str, password_hash: str, hashing_algorithm: str, tags: { type: ['string', 'array'] } }) } },
    async (req: FastifyRequest<{ Params: { name: string }; Body: Json }>, reply) => {
      requireAdmin(req);
      const b = req.body ?? {};
      if (b.password === undefined && b.password_hash === undefined && !core.access.users.has(req.params.name)) {
        throw badRequest('password or password_hash must be set');
      }
      const existed = core.access.users.has(req.params.name);
      await run(() =>
        putUser(actor(req), req.params.name, {
          password: b.password as string | undefined,
          passwordHash: b.password_hash as string | undefined,
          hashingAlgorithm: b.hashing_algorithm as string | undefined,
          tags: tagList(b.tags),
        }),
      );
      return created(reply, existed);
    },
  );
  app.delete('/api/users/:name', { schema: { params: params('name') } }, async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
    requireAdmin(req);
    if (!core.access.users.has(req.params.name)) throw notFound();
    await run(() => deleteUser(actor(req), req.params.name));
    return reply.code(204).send();
  });
  app.post('/api/users/bulk-delete', { schema: { body: body({ users: { type: 'array', items: str } }, ['users']) } }, async (req: FastifyRequest<{ Body: { users: string[] } }>, reply) => {
    requireAdmin(req);
    for (const u of req.body.users) if (core.access.users.has(u)) await run(() => deleteUser(actor(req), u));
    return reply.code(204).send();
  });

  // ---- vhosts --------------------------------------------------------------------------------

  app.put(
    '/api/vhosts/:vhost',
    { schema: { params: params('vhost'), body: body({ description: str, tags: { type: ['string', 'array'] }, tracing: boolish, default_queue_type: str }) } },
    async (req: FastifyRequest<{ Params: { vhost: string }; Body: Json }>, reply) => {
      requireAdmin(req);
      const name = req.params.vhost;
      const existed = core.vhosts.has(name);
      const b = req.body ?? {};
      await run(() => putVhost(actor(req), name, { description: b.description as string | undefined, tags: b.tags === undefined ? undefined : tagList(b.tags) }));
      // RabbitMQ's management API: the user who creates a vhost gets full permissions on it
      if (!existed && core.access.permission(req.principal.name, name) === undefined) {
        await run(() => setPermissions(actor(req), req.principal.name, name, { configure: '.*', write: '.*', read: '.*' }));
      }
      return created(reply, existed);
    },
  );
  app.delete('/api/vhosts/:vhost', { schema: { params: params('vhost') } }, async (req: FastifyRequest<{ Params: { vhost: string } }>, reply) => {
    requireAdmin(req);
    if (!core.vhosts.has(req.params.vhost)) throw notFound();
    await run(() => deleteVhost(actor(req), req.params.vhost));
    view.sampler.forgetVhost(req.params.vhost);
    core.rpc.forgetVhost(req.params.vhost);
    return reply.code(204).send();
  });

  // ---- permissions ---------------------------------------------------------------------------

  const permissionJson = (p: { user: string; vhost: string; configure: string; write: string; read: string }) => ({
    user: p.user,
    vhost: p.vhost,
    configure: p.configure,
    write: p.write,
    read: p.read,
  });
  const topicJson = (p: { user: string; vhost: string; exchange: string; write: string; read: string }) => ({
    user: p.user,
    vhost: p.vhost,
    exchange: p.exchange,
    write: p.write,
    read: p.read,
  });
  const seePermissions = (req: FastifyRequest) => {
    if (!isMonitor(req.principal)) throw new ApiError(401, 'not_authorised', 'Not administrator user');
  };
  app.get('/api/permissions', async (req) => {
    requireAdmin(req);
    return listPermissions(actor(req)).map(permissionJson);
  });
  app.get('/api/vhosts/:vhost/permissions', { schema: { params: params('vhost') } }, async (req: FastifyRequest<{ Params: { vhost: string } }>) => {
    seePermissions(req);
    if (!core.vhosts.has(req.params.vhost)) throw notFound();
    return core.access.allPermissions().filter((p) => p.vhost === req.params.vhost).map(permissionJson);
  });
  app.get('/api/users/:name/permissions', { schema: { params: params('name') } }, async (req: FastifyRequest<{ Params: { name: string } }>) => {
    requireAdmin(req);
    if (!core.access.users.has(req.params.name)) throw notFound();
    return core.access.allPermissions().filter((p) => p.user === req.params.name).map(permissionJson);
  });
  app.get('/api/permissions/:vhost/:user', { schema: { params: params('vhost', 'user') } }, async (req: FastifyRequest<{ Params: { vhost: string; user: string } }>) => {
    requireAdmin(req);
    const p = core.access.permission(req.params.user, req.params.vhost);
    if (p === undefined) throw notFound();
    return permissionJson(p.record);
  });
  app.put(
    '/api/permissions/:vhost/:user',
    { schema: { params: params('vhost', 'user'), body: body({ configure: str, write: str, read: str }, ['configure', 'write', 'read']) } },
    async (req: FastifyRequest<{ Params: { vhost: string; user: string }; Body: { configure: string; write: string; read: string } }>, reply) => {
      requireAdmin(req);
      const { vhost, user } = req.params;
      if (!core.vhosts.has(vhost)) throw new ApiError(404, 'not_found', 'vhost_not_found');
      if (!core.access.users.has(user)) throw new ApiError(404, 'not_found', 'user_not_found');
      const existed = core.access.permission(user, vhost) !== undefined;
      await run(() => setPermissions(actor(req), user, vhost, req.body));
      return created(reply, existed);
    },
  );
  app.delete('/api/permissions/:vhost/:user', { schema: { params: params('vhost', 'user') } }, async (req: FastifyRequest<{ Params: { vhost: string; user: string } }>, reply) => {
    requireAdmin(req);
    if (core.access.permission(req.params.user, req.params.vhost) === undefined) throw notFound();
    await run(() => clearPermissions(actor(req), req.params.user, req.params.vhost));
    return reply.code(204).send();
  });

  app.get('/api/topic-permissions', async (req) => {
    requireAdmin(req);
    return listTopicPermissions(actor(req)).map(topicJson);
  });
  app.get('/api/vhosts/:vhost/topic-permissions', { schema: { params: params('vhost') } }, async (req: FastifyRequest<{ Params: { vhost: string } }>) => {
    seePermissions(req);
    if (!core.vhosts.has(req.params.vhost)) throw notFound();
    return core.access.allTopicPermissions().filter((p) => p.vhost === req.params.vhost).map(topicJson);
  });
  app.get('/api/users/:name/topic-permissions', { schema: { params: params('name') } }, async (req: FastifyRequest<{ Params: { name: string } }>) => {
    requireAdmin(req);
    if (!core.access.users.has(req.params.name)) throw notFound();
    return core.access.allTopicPermissions().filter((p) => p.user === req.params.name).map(topicJson);
  });
  app.get('/api/topic-permissions/:vhost/:user', { schema: { params: params('vhost', 'user') } }, async (req: FastifyRequest<{ Params: { vhost: string; user: string } }>) => {
    requireAdmin(req);
    const found = core.access.allTopicPermissions().filter((p) => p.vhost === req.params.vhost && p.user === req.params.user);
    if (found.length === 0) throw notFound();
    return found.map(topicJson);
  });
  app.put(
    '/api/topic-permissions/:vhost/:user',
    { schema: { params: params('vhost', 'user'), body: body({ exchange: str, write: str, read: str }, ['exchange', 'write', 'read']) } },
    async (req: FastifyRequest<{ Params: { vhost: string; user: string }; Body: { exchange: string; write: string; read: string } }>, reply) => {
      requireAdmin(req);
      const { vhost, user } = req.params;
      if (!core.vhosts.has(vhost)) throw new ApiError(404, 'not_found', 'vhost_not_found');
      if (!core.access.users.has(user)) throw new ApiError(404, 'not_found', 'user_not_found');
      const existed = core.access.allTopicPermissions().some((p) => p.vhost === vhost && p.user === user && p.exchange === req.body.exchange);
      await run(() => setTopicPermissions(actor(req), user, vhost, req.body));
      return created(reply, existed);
    },
  );
  app.delete('/api/topic-permissions/:vhost/:user', { schema: { params: params('vhost', 'user') } }, async (req: FastifyRequest<{ Params: { vhost: string; user: string } }>, reply) => {
    requireAdmin(req);
    await run(() => clearTopicPermissions(actor(req), req.params.user, req.params.vhost));
    return reply.code(204).send();
  });

  // ---- vhost limits --------------------------------------------------------------------------

  const limitsJson = (vhost: string) => {
    const l = core.access.vhostLimits.get(vhost);
    const value: Json = {};
    if (l?.maxConnections !== undefined) value['max-connections'] = l.maxConnections;
    if (l?.maxQueues !== undefined) value['max-queues'] = l.maxQueues;
    return Object.keys(value).length === 0 ? null : { vhost, value };
  };
  app.get('/api/vhost-limits', async (req) => {
    requireAdmin(req);
    return listVhosts(actor(req)).map((v) => limitsJson(v.name)).filter((x) => x !== null);
  });
  app.get('/api/vhost-limits/:vhost', { schema: { params: params('vhost') } }, async (req: FastifyRequest<{ Params: { vhost: string } }>) => {
    requireAdmin(req);
    if (!core.vhosts.has(req.params.vhost)) throw notFound();
    const l = limitsJson(req.params.vhost);
    return l === null ? [] : [l];
  });
  app.put(
    '/api/vhost-limits/:vhost/:name',
    { schema: { params: params('vhost', 'name'), body: body({ value: intish }, ['value']) } },
    async (req: FastifyRequest<{ Params: { vhost: string; name: string }; Body: { value: unknown } }>, reply) => {
      requireAdmin(req);
      const value = int(req.body.value, 'value');
      if (req.params.name === 'max-connections') await run(() => setVhostLimits(actor(req), req.params.vhost, { maxConnections: value }));
      else if (req.params.name === 'max-queues') await run(() => setVhostLimits(actor(req), req.params.vhost, { maxQueues: value }));
      else throw badRequest(`unknown vhost limit '${req.params.name}' (max-connections, max-queues)`);
      return reply.code(204).send();
    },
  );
  app.delete('/api/vhost-limits/:vhost/:name', { schema: { params: params('vhost', 'name') } }, async (req: FastifyRequest<{ Params: { vhost: string; name: string } }>, reply) => {
    requireAdmin(req);
    const name = req.params.name;
    if (name !== 'max-connections' && name !== 'max-queues') throw notFound();
    await run(() => clearVhostLimits(actor(req), req.params.vhost, name));
    return reply.code(204).send();
  });

  // ---- queues ----------------------------------------------------------------------------------

  app.put(
    '/api/queues/:vhost/:name',
    { schema: { params: params('vhost', 'name'), body: body({ durable: boolish, auto_delete: boolish, arguments: obj, node: str }) } },
    async (req: FastifyRequest<{ Params: { vhost: string; name: string }; Body: Json }>, reply) => {
      const s = session(req, req.params.vhost);
      const b = req.body ?? {};
      const existed = s.vhost.queues.has(req.params.name);
      await run(() =>
        declareQueue(s, {
          name: req.params.name,
          durable: bool(b.durable, true, 'durable'),
          autoDelete: bool(b.auto_delete, false, 'auto_delete'),
          exclusive: false,
          arguments: table(b.arguments, 'arguments'),
        }),
      );
      return created(reply, existed);
    },
  );
  app.delete(
    '/api/queues/:vhost/:name',
    { schema: { params: params('vhost', 'name'), querystring: { type: 'object', properties: { 'if-unused': str, 'if-empty': str } } } },
    async (req: FastifyRequest<{ Params: { vhost: string; name: string }; Querystring: Record<string, string> }>, reply) => {
      const s = session(req, req.params.vhost);
      if (!s.vhost.queues.has(req.params.name)) throw notFound();
      await run(() => deleteQueue(s, req.params.name, { ifUnused: req.query['if-unused'] === 'true', ifEmpty: req.query['if-empty'] === 'true' }));
      return reply.code(204).send();
    },
  );
  app.delete('/api/queues/:vhost/:name/contents', { schema: { params: params('vhost', 'name') } }, async (req: FastifyRequest<{ Params: { vhost: string; name: string } }>, reply) => {
    const s = session(req, req.params.vhost);
    await run(() => purgeQueue(s, req.params.name));
    return reply.code(204).send();
  });
  app.post(
    '/api/queues/:vhost/:name/get',
    {
      schema: {
        params: params('vhost', 'name'),
        body: body(
          { count: intish, ackmode: { enum: ['ack_requeue_true', 'ack_requeue_false', 'reject_requeue_true', 'reject_requeue_false'] }, encoding: { enum: ['auto', 'base64'] }, truncate: intish, requeue: boolish },
          ['ackmode', 'encoding'],
        ),
      },
    },
    async (req: FastifyRequest<{ Params: { vhost: string; name: string }; Body: Json }>) => {
      const s = session(req, req.params.vhost);
      const count = int(req.body.count, 'count') ?? 1;
      if (count < 1) throw badRequest('count must be at least 1');
      const truncate = int(req.body.truncate, 'truncate');
      const requeue = String(req.body.ackmode).endsWith('_true');
      const q: Queue = await run(() => getOperation(s, req.params.name));
      const taken = [];
      for (let i = 0; i < count; i++) {
        if (q.hasPagedOnly) await q.pageIn();
        const entry = q.shift();
        if (entry === undefined) break;
        taken.push(entry);
      }
      const out = taken.map((e, i) => messageJson(e.message, e.redelivered, q.messageCount + (requeue ? taken.length - i - 1 : 0), req.body.encoding === 'base64', truncate));
      for (const e of taken) {
        q.stats.get++;
        if (requeue) q.requeue(e); // RabbitMQ's get requeues: the message comes back marked redelivered
        else q.discard(e);
      }
      if (taken.length === 0) q.stats.getEmpty++;
      return out;
    },
  );

  // Warren's message browser: the first messages as they wait, not taken, not marked redelivered
  app.get(
    '/api/warren/queues/:vhost/:name/browse',
    { schema: { params: params('vhost', 'name'), querystring: { type: 'object', properties: { count: { type: 'integer', minimum: 1, maximum: 500 }, encoding: { enum: ['auto', 'base64'] }, truncate: { type: 'integer', minimum: 0 } } } } },
    async (req: FastifyRequest<{ Params: { vhost: string; name: string }; Querystring: { count?: number; encoding?: string; truncate?: number } }>) => {
      const v = core.vhosts.get(req.params.vhost);
      if (v === undefined) throw notFound();
      if (!canAccessVhost(view, req.principal, req.params.vhost)) throw new ApiError(401, 'not_authorised', 'User not authorised to access virtual host');
      const s = new Session(core, req.principal, v, null);
      const { queue, entries } = await run(() => browseQueue(s, req.params.name, req.query.count ?? 20));
      return {
        messages: queue.messageCount,
        paged_out: queue.pagedOutCount,
        items: entries.map((e, i) => ({ position: i + 1, ...messageJson(e.message, e.redelivered, queue.messageCount - i - 1, req.query.encoding === 'base64', req.query.truncate) })),
      };
    },
  );

  // ---- exchanges -------------------------------------------------------------------------------

  app.put(
    '/api/exchanges/:vhost/:name',
    { schema: { params: params('vhost', 'name'), body: body({ type: str, durable: boolish, auto_delete: boolish, internal: boolish, arguments: obj }, ['type']) } },
    async (req: FastifyRequest<{ Params: { vhost: string; name: string }; Body: Json }>, reply) => {
      const s = session(req, req.params.vhost);
      const b = req.body;
      const existed = s.vhost.exchanges.has(req.params.name);
      await run(() =>
        declareExchange(s, {
          name: req.params.name,
          type: String(b.type),
          durable: bool(b.durable, true, 'durable'),
          autoDelete: bool(b.auto_delete, false, 'auto_delete'),
          internal: bool(b.internal, false, 'internal'),
          arguments: table(b.arguments, 'arguments'),
        }),
      );
      return created(reply, existed);
    },
  );
  app.delete(
    '/api/exchanges/:vhost/:name',
    { schema: { params: params('vhost', 'name'), querystring: { type: 'object', properties: { 'if-unused': str } } } },
    async (req: FastifyRequest<{ Params: { vhost: string; name: string }; Querystring: Record<string, string> }>, reply) => {
      const s = session(req, req.params.vhost);
      if (!s.vhost.exchanges.has(req.params.name)) throw notFound();
      await run(() => deleteExchange(s, req.params.name, req.query['if-unused'] === 'true'));
      return reply.code(204).send();
    },
  );
  app.post(
    '/api/exchanges/:vhost/:name/publish',
    { schema: { params: params('vhost', 'name'), body: body({ routing_key: str, payload: str, payload_encoding: { enum: ['string', 'base64'] }, properties: obj }, ['routing_key', 'payload', 'payload_encoding']) } },
    async (req: FastifyRequest<{ Params: { vhost: string; name: string }; Body: Json }>) => {
      const s = session(req, req.params.vhost);
      const b = req.body;
      const exchangeName = req.params.name === 'amq.default' ? '' : req.params.name;
      const routingKey = String(b.routing_key);
      const payload = b.payload_encoding === 'base64' ? Buffer.from(String(b.payload), 'base64') : Buffer.from(String(b.payload), 'utf8');
      const props = basicProperties((b.properties ?? {}) as Json);
      return run(() => {
        const exchange = new PublishPermits(s).exchange(exchangeName, routingKey);
        const message = new Message(exchange.name, routingKey, encodeBasicProperties(props), payload);
        validateProperties(s, message);
        const out = httpPublisher();
        publish(s, exchange, message, false, out);
        view.sampler.trackChannel(out.stats, s.vhost.name, () => true);
        return { routed: out.stats.routed > 0 };
      });
    },
  );

  // ---- bindings --------------------------------------------------------------------------------

  for (const [char, kind] of [['q', 'queue'], ['e', 'exchange']] as const) {
    app.post(
      `/api/bindings/:vhost/e/:source/${char}/:dest`,
      { schema: { params: params('vhost', 'source', 'dest'), body: body({ routing_key: str, arguments: obj }) } },
      async (req: FastifyRequest<{ Params: { vhost: string; source: string; dest: string }; Body: Json }>, reply) => {
        const s = session(req, req.params.vhost);
        const routingKey = String(req.body?.routing_key ?? '');
        const args = table(req.body?.arguments, 'arguments');
        if (!s.vhost.exchanges.has(req.params.source)) throw notFound();
        if (kind === 'queue' ? !s.vhost.queues.has(req.params.dest) : !s.vhost.exchanges.has(req.params.dest)) throw notFound();
        await run(() =>
          kind === 'queue'
            ? bindQueue(s, { queue: req.params.dest, exchange: req.params.source, routingKey, arguments: args })
            : bindExchange(s, { destination: req.params.dest, source: req.params.source, routingKey, arguments: args }),
        );
        const props = propertiesKey(routingKey, args);
        return reply.code(201).header('location', `${encodeURIComponent(req.params.dest)}/${encodeURIComponent(props)}`).send();
      },
    );
    app.delete(
      `/api/bindings/:vhost/e/:source/${char}/:dest/:props`,
      { schema: { params: params('vhost', 'source', 'dest', 'props') } },
      async (req: FastifyRequest<{ Params: { vhost: string; source: string; dest: string; props: string } }>, reply) => {
        const s = session(req, req.params.vhost);
        const binding = vhostBindings(s.vhost).find(
          (b) => b.source === req.params.source && b.destination_type === kind && b.destination === req.params.dest && b.properties_key === req.params.props,
        );
        if (binding === undefined) throw notFound();
        const args = fieldTableFromJs(binding.arguments);
        // the binding's own arguments (with their types), not a round trip through JSON
        const x = s.vhost.exchanges.get(binding.source)!;
        let exact: FieldTable = args;
        for (const b of x.table.bindings()) {
          if (b.dest.name === binding.destination && b.dest.kind === kind && b.routingKey === binding.routing_key && propertiesKey(b.routingKey, b.args) === binding.properties_key) exact = b.args;
        }
        await run(() =>
          kind === 'queue'
            ? unbindQueue(s, { queue: binding.destination, exchange: binding.source, routingKey: binding.routing_key, arguments: exact })
            : unbindExchange(s, { destination: binding.destination, source: binding.source, routingKey: binding.routing_key, arguments: exact }),
        );
        return reply.code(204).send();
      },
    );
  }

  // ---- aliveness test -----------------------------------------------------------------------------

  // RabbitMQ's: as the user, declare `aliveness-test` (left behind), publish one message, get it back
  app.get('/api/aliveness-test/:vhost', { schema: { params: params('vhost') } }, async (req: FastifyRequest<{ Params: { vhost: string } }>, reply) => {
    if (!core.vhosts.has(req.params.vhost)) throw notFound();
    const s = session(req, req.params.vhost);
    const q = await run(async () => {
      await declareQueue(s, { name: 'aliveness-test', durable: false, exclusive: false, autoDelete: false, arguments: new Map() });
      const exchange = new PublishPermits(s).exchange('', 'aliveness-test');
      const out = httpPublisher();
      publish(s, exchange, new Message('', 'aliveness-test', Buffer.from([0, 0]), Buffer.from('test_message')), false, out);
      view.sampler.trackChannel(out.stats, s.vhost.name, () => true);
      return getOperation(s, 'aliveness-test');
    });
    const entry = q.shift();
    if (entry === undefined) return reply.code(503).send({ status: 'failed', reason: 'aliveness test message was not received' });
    q.discard(entry);
    return { status: 'ok' };
  });

  // ---- policies and operator policies ----------------------------------------------------------

  for (const [path, operator] of [['policies', false], ['operator-policies', true]] as const) {
    const visible = (req: FastifyRequest, vhost: string | null) =>
      listPolicies(actor(req), vhost, operator)
        .filter((p) => canAccessVhost(view, req.principal, p.vhost))
        .map(policyJson);
    app.get(`/api/${path}`, { schema: { querystring: LIST_QUERY_SCHEMA } }, async (req: FastifyRequest<{ Querystring: ListQuery }>) => list(visible(req, null), req.query));
    app.get(`/api/${path}/:vhost`, { schema: { params: params('vhost'), querystring: LIST_QUERY_SCHEMA } }, async (req: FastifyRequest<{ Params: { vhost: string }; Querystring: ListQuery }>) => {
      if (!core.vhosts.has(req.params.vhost)) throw notFound();
      return list(visible(req, req.params.vhost), req.query);
    });
    app.get(`/api/${path}/:vhost/:name`, { schema: { params: params('vhost', 'name') } }, async (req: FastifyRequest<{ Params: { vhost: string; name: string } }>) => {
      const p = visible(req, req.params.vhost).find((x) => x.name === req.params.name);
      if (p === undefined) throw notFound();
      return p;
    });
    app.put(
      `/api/${path}/:vhost/:name`,
      { schema: { params: params('vhost', 'name'), body: body({ pattern: str, definition: obj, priority: intish, 'apply-to': str }, ['pattern', 'definition']) } },
      async (req: FastifyRequest<{ Params: { vhost: string; name: string }; Body: Json }>, reply) => {
        const { vhost, name } = req.params;
        if (!core.vhosts.has(vhost)) throw new ApiError(404, 'not_found', 'vhost_not_found');
        const existed = listPolicies(actor(req), vhost, operator).some((p) => p.name === name);
        const b = req.body;
        await run(() => putPolicy(actor(req), vhost, name, { pattern: b.pattern, definition: b.definition, priority: b.priority, applyTo: b['apply-to'] }, operator));
        return created(reply, existed);
      },
    );
    app.delete(`/api/${path}/:vhost/:name`, { schema: { params: params('vhost', 'name') } }, async (req: FastifyRequest<{ Params: { vhost: string; name: string } }>, reply) => {
      await run(() => deletePolicy(actor(req), req.params.vhost, req.params.name, operator));
      return reply.code(204).send();
    });
  }

  // runtime parameters: Warren has the vhost-limits component (and operator policies, listed above)
  const parametersOf = (req: FastifyRequest, vhost: string | null) =>
    [...core.vhosts.keys()]
      .filter((v) => (vhost === null || v === vhost) && canAccessVhost(view, req.principal, v))
      .flatMap((v) => {
        const l = limitsJson(v);
        return l === null ? [] : [{ vhost: v, component: 'vhost-limits', name: 'limits', value: l.value }];
      });
  app.get('/api/parameters', async (req) => parametersOf(req, null));
  app.get('/api/parameters/:component', { schema: { params: params('component') } }, async (req: FastifyRequest<{ Params: { component: string } }>) =>
    req.params.component === 'vhost-limits' ? parametersOf(req, null) : [],
  );
  app.get('/api/parameters/:component/:vhost', { schema: { params: params('component', 'vhost') } }, async (req: FastifyRequest<{ Params: { component: string; vhost: string } }>) => {
    if (!core.vhosts.has(req.params.vhost)) throw notFound();
    return req.params.component === 'vhost-limits' ? parametersOf(req, req.params.vhost) : [];
  });
  app.get('/api/global-parameters', async () => [{ name: 'cluster_name', value: view.nodeName }]);

  // ---- definitions -----------------------------------------------------------------------------

  app.get('/api/definitions', async (req) => {
    requireAdmin(req);
    return exportDefinitions(view, null);
  });
  app.get('/api/definitions/:vhost', { schema: { params: params('vhost') } }, async (req: FastifyRequest<{ Params: { vhost: string } }>) => {
    requireAdmin(req);
    if (!core.vhosts.has(req.params.vhost)) throw notFound();
    return exportDefinitions(view, req.params.vhost);
  });
  const importRoute = async (req: FastifyRequest<{ Params: { vhost?: string }; Body: unknown }>, reply: FastifyReply) => {
    requireAdmin(req);
    let defs = req.body;
    if (typeof defs !== 'object' || defs === null || Array.isArray(defs)) throw badRequest('failed_to_parse_json');
    // rabbitmqadmin and the UI's upload form wrap the file as a string field
    if (typeof (defs as Json).file === 'string') {
      try {
        defs = JSON.parse((defs as Json).file as string);
      } catch {
        throw badRequest('failed_to_parse_json');
      }
    }
    const vhost = req.params.vhost;
    if (vhost !== undefined) {
      if (!core.vhosts.has(vhost)) throw notFound();
      defs = withVhost(defs as Json, vhost);
    }
    const report = await run(() => importDefinitions(actor(req), defs));
    if (report.skipped.length > 0) req.log.warn({ skipped: report.skipped }, 'definitions import: not imported');
    return reply.code(204).send();
  };
  app.post<{ Params: { vhost?: string }; Body: unknown }>('/api/definitions', { errorHandler: definitionsParseError }, importRoute);
  app.post<{ Params: { vhost?: string }; Body: unknown }>('/api/definitions/:vhost', { schema: { params: params('vhost') }, errorHandler: definitionsParseError }, importRoute);
}

/** A policy as RabbitMQ's API shows it. */
export function policyJson(p: { vhost: string; name: string; pattern: string; applyTo: string; priority: number; definition: Readonly<Record<string, unknown>> }): Json {
  return { vhost: p.vhost, name: p.name, pattern: p.pattern, 'apply-to': p.applyTo, definition: { ...p.definition }, priority: p.priority };
}

/** POST /api/definitions with bad JSON: 400 failed_to_parse_json (RabbitMQ's reason there). */
function definitionsParseError(this: FastifyInstance, err: unknown, req: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof ApiError && err.reason === 'not_json') err = badRequest('failed_to_parse_json');
  const e = apiErrorOf(err);
  if (e instanceof ApiError) void reply.code(e.statusCode).send(e.body());
  else throw e;
  void req;
}

/** A per-vhost import: every object goes into that vhost. */
function withVhost(defs: Json, vhost: string): Json {
  const out: Json = { ...defs };
  for (const key of ['queues', 'exchanges', 'bindings', 'policies', 'parameters', 'permissions', 'topic_permissions']) {
    const items = defs[key];
    if (Array.isArray(items)) out[key] = items.map((i) => (typeof i === 'object' && i !== null ? { ...(i as Json), vhost } : i));
  }
  return out;
}

/** The management API as a publisher: no channel, no returns; its counters go to the vhost's totals. */
function httpPublisher(): PublishOutput {
  return {
    routed: new RouteSet<Queue>(),
    stats: new ChannelCounters(),
    directReplyAddress: null,
    sendReturn: () => {},
  };
}

/** RabbitMQ's JSON message properties → AMQP basic properties. */
function basicProperties(p: Json): BasicProperties {
  const out: BasicProperties = {};
  const s = (k: string) => (p[k] === undefined || p[k] === null ? undefined : String(p[k]));
  const n = (k: string) => (p[k] === undefined || p[k] === null || p[k] === '' ? undefined : int(p[k], k));
  out.contentType = s('content_type');
  out.contentEncoding = s('content_encoding');
  if (p.headers !== undefined && p.headers !== null) out.headers = table(p.headers, 'headers');
  out.deliveryMode = n('delivery_mode');
  out.priority = n('priority');
  out.correlationId = s('correlation_id');
  out.replyTo = s('reply_to');
  out.expiration = s('expiration');
  out.messageId = s('message_id');
  const ts = n('timestamp');
  if (ts !== undefined) out.timestamp = BigInt(ts);
  out.type = s('type');
  out.userId = s('user_id');
  out.appId = s('app_id');
  for (const k of Object.keys(out) as (keyof BasicProperties)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** A message as RabbitMQ's get returns it (properties as JSON, UTF-8 payloads as strings with encoding auto). */
export function messageJson(m: Message, redelivered: boolean, messageCount: number, base64: boolean, truncate: number | undefined): Json {
  let body = m.body;
  if (truncate !== undefined && body.length > truncate) body = body.subarray(0, truncate);
  const text = base64 ? null : utf8(body);
  return {
    payload_bytes: m.bodySize,
    redelivered,
    exchange: m.exchange,
    routing_key: m.routingKey,
    message_count: messageCount,
    properties: propertiesJson(m),
    payload: text ?? body.toString('base64'),
    payload_encoding: text === null ? 'base64' : 'string',
  };
}

function utf8(b: Buffer): string | null {
  const s = b.toString('utf8');
  return Buffer.byteLength(s) === b.length && !s.includes('\uFFFD') ? s : null;
}

/** RabbitMQ: a message without properties shows them as [] (an empty proplist), else an object. */
function propertiesJson(m: Message): Json | [] {
  const p = m.properties();
  const out: Json = {};
  if (p.contentType !== undefined) out.content_type = p.contentType;
  if (p.contentEncoding !== undefined) out.content_encoding = p.contentEncoding;
  if (p.headers !== undefined) out.headers = fieldTableJson(p.headers);
  if (p.deliveryMode !== undefined) out.delivery_mode = p.deliveryMode;
  if (p.priority !== undefined) out.priority = p.priority;
  if (p.correlationId !== undefined) out.correlation_id = p.correlationId;
  if (p.replyTo !== undefined) out.reply_to = p.replyTo;
  if (p.expiration !== undefined) out.expiration = p.expiration;
  if (p.messageId !== undefined) out.message_id = p.messageId;
  if (p.timestamp !== undefined) out.timestamp = Number(p.timestamp);
  if (p.type !== undefined) out.type = p.type;
  if (p.userId !== undefined) out.user_id = p.userId;
  if (p.appId !== undefined) out.app_id = p.appId;
  return Object.keys(out).length === 0 ? [] : out;
}
