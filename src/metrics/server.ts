import Fastify from 'fastify';
import type { Logger } from 'pino';
import type { BrokerView } from '../monitoring/broker-view.js';
import { httpLogger, httpServer, type HttpServer } from '../monitoring/http.js';
import { PrometheusExporter } from './exporter.js';

/** Prometheus' text exposition format, as rabbitmq_prometheus sends it. */
export const CONTENT_TYPE = 'text/plain; version=0.0.4';

/** The metrics endpoint: no auth (as rabbitmq_prometheus), `/metrics` aggregated, `/metrics/per-object` by queue. */
export function buildMetricsApp(view: BrokerView, logger: Logger) {
  const app = Fastify({ loggerInstance: httpLogger(logger) });
  const exporter = new PrometheusExporter(view);
  app.get('/metrics', async (_req, reply) => reply.type(CONTENT_TYPE).send(await exporter.render(false)));
  app.get('/metrics/per-object', async (_req, reply) => reply.type(CONTENT_TYPE).send(await exporter.render(true)));
  return app;
}

export async function startMetricsServer(view: BrokerView, logger: Logger, host: string, port: number): Promise<HttpServer> {
  const app = buildMetricsApp(view, logger);
  await app.listen({ host, port });
  return httpServer(app, port);
}
