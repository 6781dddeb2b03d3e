import type { FastifyInstance } from 'fastify';

/** The dashboard: static pages served from the management port. */
export function registerDashboard(app: FastifyInstance): void {
  void app;
}
