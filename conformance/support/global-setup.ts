import type { TestProject } from 'vitest/node';

/**
 * Conformance runs against AMQP_URL when set (e.g. a RabbitMQ from Debian), otherwise
 * against a Warren started in-process on an ephemeral port with the in-memory store.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    amqpUrl: string;
    brokerKind: 'warren' | 'external';
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.AMQP_URL;
  if (external) {
    project.provide('amqpUrl', external);
    project.provide('brokerKind', 'external');
    return async () => {};
  }
  const { startBroker } = await import('../../src/index.js');
  const broker = await startBroker({ host: '127.0.0.1', port: 0, dataDir: null, logLevel: process.env.WARREN_LOG_LEVEL ?? 'silent' });
  project.provide('amqpUrl', broker.url);
  project.provide('brokerKind', 'warren');
  return async () => {
    await broker.close();
  };
}
