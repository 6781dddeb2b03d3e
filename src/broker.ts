import type { Server, Socket } from 'node:net';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { UserStore } from './auth/user-store.js';
import { resolveConfig, type WarrenConfig } from './config/config.js';
import type { BrokerContext } from './connection/broker-context.js';
import { Connection } from './connection/connection.js';
import { createLogger } from './logging/logger.js';
import type { FieldTable } from './protocol/field-types.js';
import { fieldTableFromJs } from './protocol/field-table.js';
import { MemoryStore } from './store/memory-store.js';
import type { Store } from './store/store.js';
import { listen } from './transport/listener.js';
import { Vhost } from './vhost/vhost.js';

const pkg = createRequire(import.meta.url)('../package.json') as { version: string };
export const WARREN_VERSION: string = pkg.version;

export interface BrokerOptions extends Partial<WarrenConfig> {
  logger?: Logger;
}

export interface RunningBroker {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** closes every client connection with 320 CONNECTION_FORCED, stops listening, closes the store */
  close(reason?: string): Promise<void>;
}

/**
 * Capabilities we advertise in connection.start. Only what works: clients (kombu,
 * Spring) switch behaviour on these.
 */
const CAPABILITIES = {
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  'basic.nack': true,
  consumer_cancel_notify: true,
  authentication_failure_close: true,
  per_consumer_qos: true,
  direct_reply_to: true,
};

function serverProperties(): FieldTable {
  return fieldTableFromJs({
    product: 'Warren',
    version: WARREN_VERSION,
    platform: `Node.js ${process.version}`,
    copyright: 'Warren contributors',
    information: 'Licensed under the MIT license',
    capabilities: CAPABILITIES,
  });
}

/** Composition root: config, logger, store, vhosts, listener. No protocol logic. */
export class Broker implements BrokerContext {
  readonly config: WarrenConfig;
  readonly logger: Logger;
  readonly users: UserStore;
  readonly vhosts = new Map<string, Vhost>();
  readonly serverProperties = serverProperties();
  private readonly connections = new Map<number, Connection>();
  private readonly store: Store;
  private server: Server | null = null;

  constructor(config: WarrenConfig, logger: Logger, store: Store = new MemoryStore()) {
    this.config = config;
    this.logger = logger;
    this.users = new UserStore(config.users);
    this.store = store;
  }

  async start(): Promise<RunningBroker> {
    await this.store.open();
    for (const name of this.config.vhosts) {
      this.vhosts.set(name, new Vhost(name, this.store));
      this.store.putVhost(name);
    }
    this.server = await listen(this.config.host, this.config.port, (socket) => this.accept(socket));
    const address = this.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : this.config.port;
    const host = this.config.host;
    const urlHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
    return {
      url: `amqp://guest:guest@${urlHost}:${port}`,
      host,
      port,
      close: (reason?: string) => this.close(reason),
    };
  }

  private accept(socket: Socket): void {
    new Connection(socket, this, socket.remoteAddress, socket.remotePort);
  }

  connectionOpened(conn: Connection): void {
    this.connections.set(conn.id, conn);
  }

  connectionClosed(conn: Connection): void {
    this.connections.delete(conn.id);
  }

  findConnection(id: number): Connection | undefined {
    return this.connections.get(id);
  }

  async close(reason = 'shutdown'): Promise<void> {
    const server = this.server;
    this.server = null;
    const serverClosed = server === null ? Promise.resolve() : new Promise<void>((r) => server.close(() => r()));
    await Promise.all([...this.connections.values()].map((c) => c.forceClose(reason)));
    await serverClosed;
    await this.store.flush();
    await this.store.close();
  }
}

/** Starts a broker. Library defaults: 127.0.0.1, ephemeral port, in-memory store, silent logs. */
export async function startBroker(options: BrokerOptions = {}): Promise<RunningBroker> {
  const { logger, ...overrides } = options;
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: null, logLevel: 'silent', ...overrides });
  const broker = new Broker(config, logger ?? createLogger(config.logLevel));
  return broker.start();
}
