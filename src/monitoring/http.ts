import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

/** The framework's logger: errors and warnings only (requests are not logged), never more than the broker's. */
export function httpLogger(logger: Logger): FastifyBaseLogger {
  const level = logger.isLevelEnabled('warn') ? 'warn' : logger.level;
  return logger.child({}, { level }) as unknown as FastifyBaseLogger;
}

/** A listening HTTP front end. */
export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

export function httpServer(app: FastifyInstance, requestedPort: number): HttpServer {
  const address = app.server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : requestedPort,
    close: () => app.close(),
  };
}
