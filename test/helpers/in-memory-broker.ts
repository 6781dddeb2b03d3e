// A broker served over in-memory duplex pairs: the fixture docs/architecture (design.md) promises
// for fast connection tests. No TCP, no ports; Connection takes any Duplex.
import { duplexPair, type Duplex } from 'node:stream';
import { Broker, type BrokerOptions } from '../../src/broker.js';
import { resolveConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logging/logger.js';
import { RawClient, type TuneInfo } from '../../conformance/support/raw-client.js';

/** What RawClient.handshake needs to log in: guest/guest on '/'. The host is never dialled. */
export const IN_MEMORY_URL = 'amqp://guest:guest@in-memory/';

export interface InMemoryBroker {
  readonly broker: Broker;
  /** A new client stream: the broker serves the other end of the pair. */
  connect(): Duplex;
  /** A RawClient over a new pair, handshake done. */
  open(tune?: Partial<TuneInfo>): Promise<RawClient>;
  /** Closes every connection (320 CONNECTION_FORCED) and the store. */
  close(): Promise<void>;
}

/**
 * A duplex pair that behaves like the two ends of a TCP connection (allowHalfOpen off): an end
 * that receives 'end' ends its own side too, and destroying one end tears down the other.
 */
export function socketPair(): [Duplex, Duplex] {
  const [a, b] = duplexPair();
  for (const [self, other] of [
    [a, b],
    [b, a],
  ] as const) {
    self.on('end', () => self.end());
    self.on('close', () => other.destroy());
    // a torn-down peer is an expected outcome in these tests
    self.on('error', () => {});
  }
  return [a, b];
}

/** Starts a broker (in-memory store unless told otherwise, silent, not listening on TCP or HTTP). */
export async function startInMemoryBroker(options: BrokerOptions = {}): Promise<InMemoryBroker> {
  const { logger, ...overrides } = options;
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: null, logLevel: 'silent', managementPort: null, metricsPort: null, ...overrides });
  const broker = new Broker(config, logger ?? createLogger(config.logLevel));
  await broker.start({ listen: false });
  const connect = (): Duplex => {
    const [client, server] = socketPair();
    // a local client, as far as loopback-only users (guest) are concerned
    broker.adopt(server, '127.0.0.1', undefined);
    return client;
  };
  return {
    broker,
    connect,
    async open(tune = {}) {
      const { client } = await RawClient.open(IN_MEMORY_URL, tune, connect());
      return client;
    },
    close: () => broker.close(),
  };
}
