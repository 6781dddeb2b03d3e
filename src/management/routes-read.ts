import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Channel } from '../connection/channel.js';
import type { Connection } from '../connection/connection.js';
import type { BrokerView } from '../monitoring/broker-view.js';
import { ReplyCode } from '../protocol/reply-code.js';
import type { Vhost } from '../vhost/vhost.js';
import { canAccessVhost, canSeeUser, isMonitor, type Principal } from './auth.js';
import { ApiError, notFound } from './errors.js';
import {
  channelJson,
  connectionJson,
  connectionName,
  channelName,
  consumerJson,
  exchangeJson,
  queueJson,
  vhostBindings,
  vhostJson,
  type BindingJson,
} from './format.js';
import { LIST_QUERY_SCHEMA, list, selectOne, type ListQuery } from './listing.js';
import { nodeJson, overviewJson } from './node.js';

type Json = Record<string, unknown>;
type Req<P = Record<string, string>> = FastifyRequest<{ Params: P; Querystring: ListQuery }>;

const str = { type: 'string' } as const;
function params(...names: string[]) {
  return { type: 'object', required: names, properties: Object.fromEntries(names.map((n) => [n, str])) } as const;
}
const LIST = { querystring: LIST_QUERY_SCHEMA };

/**
 * The read-only part of the API: it reads the model and answers in RabbitMQ's shapes.
 * Every route validates its parameters with a schema.
 */
export function registerReadRoutes(app: FastifyInstance, view: BrokerView): void {
  /** A vhost the principal may see, or 404 (RabbitMQ answers a missing vhost with 404). */
  const vhostOf = (req: FastifyRequest, name: string): Vhost => {
    const v = view.vhosts.get(name);
    if (v === undefined) throw notFound();
    if (!canAccessVhost(view, req.principal, name)) throw new ApiError(401, 'not_authorised', 'User not authorised to access virtual host');
    return v;
  };
  const visibleVhosts = (p: Principal): Vhost[] => [...view.vhosts.values()].filter((v) => canAccessVhost(view, p, v.name));
  const vhostsFor = (req: FastifyRequest, name: string | undefined): Vhost[] =>
    name === undefined ? visibleVhosts(req.principal) : [vhostOf(req, name)];
  const columns = (req: Req, item: Json): Json => (req.query.columns ? selectOne(item, req.query.columns.split(',')) : item);

  const openConnections = (p: Principal, vhost?: string): Connection[] =>
    [...view.connectionList()].filter(
      (c) => c.isOpen && canSeeUser(p, c.username) && (vhost === undefined || c.vhostName === vhost) && canAccessVhost(view, p, c.vhostName),
    );
  const channelsOf = (conns: Iterable<Connection>): Channel[] => [...conns].flatMap((c) => [...c.channels.values()]);
  const findConnection = (p: Principal, name: string): Connection => {
    const c = openConnections(p).find((x) => connectionName(x) === name);
    if (c === undefined) throw notFound();
    return c;
  };

  // ---- broker -------------------------------------------------------------------------------

  app.get('/api/overview', { schema: LIST }, async (req: Req) => columns(req, overviewJson(view)));
  app.get('/api/whoami', async (req) => ({ name: req.principal.name, tags: [...req.principal.tags] }));
  app.get('/api/cluster-name', async () => ({ name: view.nodeName }));
  app.get('/api/auth', async () => ({ enable_uaa: false, uaa_client_id: '', uaa_location: '' }));
  app.get('/api/extensions', async () => []);
  app.get('/api/nodes', { schema: LIST }, async (req: Req) => list([nodeJson(view)], req.query, ['name']));
  app.get('/api/nodes/:node', { schema: { params: params('node'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ node: string }>) => {
    if (req.params.node !== view.nodeName) throw notFound();
    return columns(req, nodeJson(view));
  });

  // ---- vhosts -------------------------------------------------------------------------------

  app.get('/api/vhosts', { schema: LIST }, async (req: Req) => list(visibleVhosts(req.principal).map((v) => vhostJson(view, v)), req.query, ['name']));
  app.get('/api/vhosts/:vhost', { schema: { params: params('vhost'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ vhost: string }>) =>
    columns(req, vhostJson(view, vhostOf(req, req.params.vhost))),
  );
  app.get('/api/vhosts/:vhost/connections', { schema: { params: params('vhost'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ vhost: string }>) => {
    vhostOf(req, req.params.vhost);
    return list(openConnections(req.principal, req.params.vhost).map((c) => connectionJson(view, c)), req.query, ['name']);
  });
  app.get('/api/vhosts/:vhost/channels', { schema: { params: params('vhost'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ vhost: string }>) => {
    vhostOf(req, req.params.vhost);
    return list(channelsOf(openConnections(req.principal, req.params.vhost)).map((ch) => channelJson(view, ch)), req.query, ['name']);
  });

  // ---- exchanges ----------------------------------------------------------------------------

  const exchangesList = async (req: Req<{ vhost?: string }>) =>
    list(
      vhostsFor(req, req.params.vhost).flatMap((v) => [...v.exchanges.values()].map((x) => exchangeJson(v, x))),
      req.query,
    );
  app.get('/api/exchanges', { schema: LIST }, exchangesList);
  app.get('/api/exchanges/:vhost', { schema: { params: params('vhost'), querystring: LIST_QUERY_SCHEMA } }, exchangesList);
  app.get('/api/exchanges/:vhost/:name', { schema: { params: params('vhost', 'name'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ vhost: string; name: string }>) => {
    const v = vhostOf(req, req.params.vhost);
    const x = v.exchanges.get(exchangeName(req.params.name));
    if (x === undefined) throw notFound();
    return columns(req, exchangeJson(v, x, true));
  });
  for (const side of ['source', 'destination'] as const) {
    app.get(`/api/exchanges/:vhost/:name/bindings/${side}`, { schema: { params: params('vhost', 'name'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ vhost: string; name: string }>) => {
      const v = vhostOf(req, req.params.vhost);
      const name = exchangeName(req.params.name);
      if (!v.exchanges.has(name)) throw notFound();
      return list(
        vhostBindings(v).filter((b) => (side === 'source' ? b.source === name : b.destination_type === 'exchange' && b.destination === name)),
        req.query,
        [],
      );
    });
  }

  // ---- queues -------------------------------------------------------------------------------

  const queuesList = async (req: Req<{ vhost?: string }>) =>
    list(
      vhostsFor(req, req.params.vhost).flatMap((v) => [...v.queues.values()].map((q) => queueJson(view, v, q))),
      req.query,
    );
  app.get('/api/queues', { schema: LIST }, queuesList);
  app.get('/api/queues/:vhost', { schema: { params: params('vhost'), querystring: LIST_QUERY_SCHEMA } }, queuesList);
  app.get('/api/queues/:vhost/:name', { schema: { params: params('vhost', 'name'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ vhost: string; name: string }>) => {
    const v = vhostOf(req, req.params.vhost);
    const q = v.queues.get(req.params.name);
    if (q === undefined) throw notFound();
    return columns(req, queueJson(view, v, q, true));
  });
  app.get('/api/queues/:vhost/:name/bindings', { schema: { params: params('vhost', 'name'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ vhost: string; name: string }>) => {
    const v = vhostOf(req, req.params.vhost);
    if (!v.queues.has(req.params.name)) throw notFound();
    return list(vhostBindings(v).filter((b) => b.destination_type === 'queue' && b.destination === req.params.name), req.query, []);
  });

  // ---- bindings -----------------------------------------------------------------------------

  const bindingsList = async (req: Req<{ vhost?: string }>) =>
    list(vhostsFor(req, req.params.vhost).flatMap((v) => vhostBindings(v)), req.query, []);
  app.get('/api/bindings', { schema: LIST }, bindingsList);
  app.get('/api/bindings/:vhost', { schema: { params: params('vhost'), querystring: LIST_QUERY_SCHEMA } }, bindingsList);
  for (const [char, type] of [['q', 'queue'], ['e', 'exchange']] as const) {
    const between = (req: Req<{ vhost: string; source: string; dest: string }>): BindingJson[] => {
      const v = vhostOf(req, req.params.vhost);
      const source = exchangeName(req.params.source);
      const dest = type === 'exchange' ? exchangeName(req.params.dest) : req.params.dest;
      if (!v.exchanges.has(source)) throw notFound();
      if (type === 'queue' ? !v.queues.has(dest) : !v.exchanges.has(dest)) throw notFound();
      return vhostBindings(v).filter((b) => b.source === source && b.destination_type === type && b.destination === dest);
    };
    app.get(`/api/bindings/:vhost/e/:source/${char}/:dest`, { schema: { params: params('vhost', 'source', 'dest'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ vhost: string; source: string; dest: string }>) =>
      list(between(req), req.query, []),
    );
    app.get(`/api/bindings/:vhost/e/:source/${char}/:dest/:props`, { schema: { params: params('vhost', 'source', 'dest', 'props'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ vhost: string; source: string; dest: string; props: string }>) => {
      const b = between(req).find((x) => x.properties_key === req.params.props);
      if (b === undefined) throw notFound();
      return columns(req, b);
    });
  }

  // ---- connections, channels, consumers -----------------------------------------------------

  app.get('/api/connections', { schema: LIST }, async (req: Req) => list(openConnections(req.principal).map((c) => connectionJson(view, c)), req.query, ['name']));
  app.get('/api/connections/:name', { schema: { params: params('name'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ name: string }>) =>
    columns(req, connectionJson(view, findConnection(req.principal, req.params.name))),
  );
  app.get('/api/connections/:name/channels', { schema: { params: params('name'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ name: string }>) =>
    list(channelsOf([findConnection(req.principal, req.params.name)]).map((ch) => channelJson(view, ch)), req.query, ['name']),
  );
  app.delete('/api/connections/:name', { schema: { params: params('name'), headers: { type: 'object', properties: { 'x-reason': str } } } }, async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
    const c = findConnection(req.principal, req.params.name);
    const reason = req.headers['x-reason'];
    c.closeWithError(ReplyCode.ConnectionForced, typeof reason === 'string' && reason !== '' ? reason : 'Closed via management plugin', 0, 0);
    return reply.code(204).send();
  });
  app.get('/api/channels', { schema: LIST }, async (req: Req) =>
    list(channelsOf(openConnections(req.principal)).map((ch) => channelJson(view, ch)), req.query, ['name']),
  );
  app.get('/api/channels/:name', { schema: { params: params('name'), querystring: LIST_QUERY_SCHEMA } }, async (req: Req<{ name: string }>) => {
    const ch = channelsOf(openConnections(req.principal)).find((x) => channelName(x) === req.params.name);
    if (ch === undefined) throw notFound();
    const out = channelJson(view, ch);
    out.consumer_details = [...ch.consumers.values()].map((c) => consumerJson(view, ch.vhost, c));
    return columns(req, out);
  });
  const consumersList = async (req: Req<{ vhost?: string }>) =>
    list(
      vhostsFor(req, req.params.vhost).flatMap((v) =>
        [...v.queues.values()].flatMap((q) =>
          q.consumers
            .filter((c) => canSeeUser(req.principal, (c.owner as unknown as Channel).conn.username))
            .map((c) => consumerJson(view, v, c)),
        ),
      ),
      req.query,
      ['queue.vhost', 'queue.name', 'consumer_tag'],
    );
  app.get('/api/consumers', { schema: LIST }, consumersList);
  app.get('/api/consumers/:vhost', { schema: { params: params('vhost'), querystring: LIST_QUERY_SCHEMA } }, consumersList);

  // ---- health checks (RabbitMQ 3.8+): 200 {"status":"ok"} or 503 {"status":"failed",...} ----------

  app.get('/api/health/checks/alarms', async (_req, reply) => alarmsCheck(view, reply));
  app.get('/api/health/checks/local-alarms', async (_req, reply) => alarmsCheck(view, reply));
  app.get('/api/health/checks/virtual-hosts', async () => ({ status: 'ok' }));
  app.get('/api/health/checks/node-is-quorum-critical', async () => ({ status: 'ok', reason: 'single node cluster' }));
  app.get('/api/health/checks/node-is-mirror-sync-critical', async () => ({ status: 'ok' }));
  app.get('/api/health/checks/is-in-service', async () => ({ status: 'ok' }));
  app.get('/api/health/checks/certificate-expiration/:within/:unit', { schema: { params: params('within', 'unit') } }, async (req: FastifyRequest<{ Params: { within: string; unit: string } }>) => {
    if (!/^[0-9]+$/.test(req.params.within) || !['days', 'weeks', 'months', 'years'].includes(req.params.unit)) {
      throw new ApiError(400, 'bad_request', 'Invalid expiration value or unit');
    }
    return { status: 'ok' }; // no TLS listener: no certificate can expire
  });
  app.get('/api/health/checks/port-listener/:port', { schema: { params: { type: 'object', required: ['port'], properties: { port: { type: 'integer', minimum: 0, maximum: 65535 } } } } }, async (req: FastifyRequest<{ Params: { port: number } }>, reply) => {
    const ports = view.listeners().map((l) => l.port);
    if (ports.includes(req.params.port)) return { status: 'ok', port: req.params.port };
    return reply.code(503).send({ status: 'failed', reason: 'No active listener', missing: req.params.port, ports });
  });
  app.get('/api/health/checks/protocol-listener/:protocol', { schema: { params: params('protocol') } }, async (req: FastifyRequest<{ Params: { protocol: string } }>, reply) => {
    const wanted = normaliseProtocol(req.params.protocol);
    const protocols = view.listeners().map((l) => l.protocol);
    if ((protocols as string[]).includes(wanted)) return { status: 'ok', protocol: wanted };
    return reply.code(503).send({ status: 'failed', reason: 'No active listener', missing: wanted, protocols });
  });

  // ---- Warren: the RPC view (request/reply traffic per request queue) --------------------------

  app.get('/api/warren/rpc', { schema: LIST }, async (req: Req) =>
    list(
      view.core.rpc
        .list()
        .filter((s) => canAccessVhost(view, req.principal, s.vhost))
        .map((s) => ({
          vhost: s.vhost,
          name: s.queue,
          requests: s.requests,
          requests_details: { rate: Math.round(s.requestRate * 100) / 100 },
          replies: s.replies,
          replies_details: { rate: Math.round(s.replyRate * 100) / 100 },
          unanswered: s.unanswered,
          latency_ms: s.latency(),
        })),
      req.query,
    ),
  );

  // ---- Warren: broker-wide rate history for the dashboard's charts ---------------------------

  app.get('/api/warren/history', { schema: { querystring: { type: 'object', properties: { since: { type: 'integer', minimum: 0 } } } } }, async (req: FastifyRequest<{ Querystring: { since?: number } }>) => {
    if (!isMonitor(req.principal)) throw new ApiError(401, 'not_authorised', 'Not monitor user');
    return { interval: view.sampler.intervalMs, points: view.sampler.historySince(req.query.since ?? 0) };
  });
}

/** RabbitMQ names the default exchange amq.default in URLs. */
function exchangeName(name: string): string {
  return name === 'amq.default' ? '' : name;
}

function normaliseProtocol(p: string): string {
  switch (p) {
    case 'amqp091':
    case 'amqp0-9-1':
    case 'amqp':
      return 'amqp';
    case 'prometheus':
    case 'http/prometheus':
      return 'http/prometheus';
    case 'management':
    case 'http':
      return 'http';
    default:
      return p;
  }
}

function alarmsCheck(view: BrokerView, reply: import('fastify').FastifyReply) {
  const r = view.resources();
  const alarms: Json[] = [];
  if (r.memoryAlarm) alarms.push({ node: view.nodeName, resource: 'memory' });
  if (r.diskAlarm) alarms.push({ node: view.nodeName, resource: 'disk' });
  if (alarms.length === 0) return { status: 'ok' };
  return reply.code(503).send({ status: 'failed', reason: 'resource alarm(s) in effect in the cluster', alarms });
}
