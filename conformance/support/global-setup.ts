import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import type { WarrenConfig } from '../../src/index.js';

/**
 * The conformance projects (vitest.config.ts):
 * - `conformance`: against AMQP_URL when set (e.g. a RabbitMQ from Debian), otherwise against a
 *   Warren started in-process on an ephemeral port with the in-memory store;
 * - `conformance-paging`: always against an in-process Warren with a LevelDB data dir and a
 *   queue memory budget so small that nearly every message is paged out (persistent ones of
 *   durable queues to the durable log, the others to the spill), so the paging paths see
 *   every protocol case (test/queue/conformance-paging-settings.test.ts checks that they do).
 */
declare module 'vitest' {
  export interface ProvidedContext {
    amqpUrl: string;
    brokerKind: 'warren' | 'external';
  }
}

export const PAGING_PROJECT = 'conformance-paging';

/**
 * What makes queues page in the paging project: the one place that names the setting. The
 * broker-wide memory budget for ready messages (--queue-memory-budget) is 1 KiB, less than
 * three small messages' bookkeeping (ENTRY_OVERHEAD, 400 bytes each besides the body): once
 * the queues hold more, every queue pages out all its ready messages but the one consumers
 * get next, in chunks of about one message, and reads them back as consumers reach them (no
 * per-queue window: the budget alone decides).
 */
export const PAGING_SETTINGS: Partial<WarrenConfig> = { queueMemoryBudget: 1024 };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const paging = project.name === PAGING_PROJECT;
  const external = process.env.AMQP_URL;
  if (external && !paging) {
    project.provide('amqpUrl', external);
    project.provide('brokerKind', 'external');
    return async () => {};
  }
  const { startBroker } = await import('../../src/index.js');
  const dataDir = paging ? await mkdtemp(join(tmpdir(), 'warren-conformance-paging-')) : null;
  const broker = await startBroker({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    logLevel: process.env.WARREN_LOG_LEVEL ?? 'silent',
    ...(paging ? PAGING_SETTINGS : {}),
  });
  project.provide('amqpUrl', broker.url);
  project.provide('brokerKind', 'warren');
  return async () => {
    await broker.close();
    if (dataDir !== null) await rm(dataDir, { recursive: true, force: true });
  };
}
