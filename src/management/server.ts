import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { httpLogger, httpServer, type HttpServer } from '../monitoring/http.js';

export type { HttpServer };
import type { Logger } from 'pino';
import type { BrokerView } from '../monitoring/broker-view.js';
import { authenticate, isManagementUser, type Principal } from './auth.js';
import { ApiError, AUTH_CHALLENGE, badRequest, notFound } from './errors.js';
import { registerReadRoutes } from './routes-read.js';
import { apiErrorOf, registerWriteRoutes } from './routes-write.js';
import { registerDashboard } from './dashboard.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** the authenticated user (every /api route but /api/auth) */
    principal: Principal;
  }
}

/** Largest request body (definitions files can be large). */
const BODY_LIMIT = 64 * 1024 * 1024;

/** Paths under /api that need no login (RabbitMQ: the UI asks /api/auth before logging in). */
const PUBLIC_API = new Set(['/api/auth']);

/**
 * The management HTTP API (RabbitMQ's /api shapes) and the dashboard. Built without
 * listening so tests can `inject` requests.
 */
export function buildManagementApp(view: BrokerView, logger: Logger): FastifyInstance {
  const app = Fastify({
    // requests are not logged (warn and above only: errors)
    loggerInstance: httpLogger(logger),
    bodyLimit: BODY_LIMIT,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    // rabbitmqadmin sends booleans and numbers as strings: schemas allow either
    ajv: { customOptions: { allowUnionTypes: true } },
    // RabbitMQ's API takes any body as JSON; parse errors are answered as RabbitMQ does
  });
  app.decorateRequest('principal', null as unknown as Principal);

  // Bodies are JSON whatever the Content-Type says (curl -d sends form-urlencoded)
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new ApiError(400, 'bad_request', 'not_json'), undefined);
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0]!;
    if (!path.startsWith('/api/') || PUBLIC_API.has(path)) return;
    req.principal = checkAuth(view, req, reply);
  });

  // RabbitMQ takes PUT /api/vhosts/x without a body: an absent body is an empty object
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined && (req.method === 'PUT' || req.method === 'POST')) req.body = {};
  });

  app.setErrorHandler((err: unknown, req, reply) => sendError(err, req, reply));
  app.setNotFoundHandler((_req, reply) => {
    void reply.code(404).send(notFound().body());
  });

  registerReadRoutes(app, view);
  registerWriteRoutes(app, view);
  registerDashboard(app, view.version);
  return app;
}

/** Basic auth; every failure is 401 with the realm challenge (tools send credentials only after it). */
function checkAuth(view: BrokerView, req: FastifyRequest, reply: FastifyReply): Principal {
  void reply;
  const header = req.headers.authorization;
  if (header === undefined || !/^basic /i.test(header)) throw new ApiError(401, '', '');
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const username = colon < 0 ? decoded : decoded.slice(0, colon);
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  const principal = authenticate(view, username, password, req.socket.remoteAddress);
  if (principal === null) throw new ApiError(401, 'not_authorized', 'Login failed');
  if (!isManagementUser(principal)) throw new ApiError(401, 'not_authorised', 'Not management user');
  return principal;
}

function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply): void {
  let e: ApiError;
  err = apiErrorOf(err);
  if (err instanceof ApiError) e = err;
  else if (isValidationError(err)) e = badRequest(err.message);
  else if (isClientError(err)) e = new ApiError(err.statusCode, 'bad_request', err.message);
  else {
    req.log.error({ err, url: req.url, method: req.method }, 'management request failed');
    e = new ApiError(500, 'internal_server_error', 'Internal error');
  }
  if (e.statusCode === 401) {
    // The dashboard's own requests (marked as XMLHttpRequest) are not challenged: a browser
    // would answer the challenge with its login dialog instead of letting the page say why.
    if (req.headers['x-requested-with'] !== 'XMLHttpRequest') void reply.header('www-authenticate', AUTH_CHALLENGE);
    // RabbitMQ: no credentials at all → an empty 401
    if (e.error === '') {
      void reply.code(401).send();
      return;
    }
  }
  void reply.code(e.statusCode).send(e.body());
}

function isValidationError(err: unknown): err is Error & { validation: unknown } {
  return err instanceof Error && 'validation' in err && (err as { validation?: unknown }).validation !== undefined;
}

function isClientError(err: unknown): err is Error & { statusCode: number } {
  const code = (err as { statusCode?: unknown }).statusCode;
  return err instanceof Error && typeof code === 'number' && code >= 400 && code < 500;
}

export async function startManagementServer(view: BrokerView, logger: Logger, host: string, port: number): Promise<HttpServer> {
  const app = buildManagementApp(view, logger);
  await app.listen({ host, port });
  return httpServer(app, port);
}
