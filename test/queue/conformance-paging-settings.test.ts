// The conformance-paging project runs the whole conformance suite against a Warren started
// with PAGING_SETTINGS (conformance/support/global-setup.ts) so that the paging paths see
// every protocol case. This checks that those settings do page: with them, a queue holding a
// handful of messages keeps only the next one in memory (persistent messages of a durable
// queue paged to the durable log, transient ones to the spill), hands them out in order, and
// is all in memory again once drained.
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { PAGING_SETTINGS } from '../../conformance/support/global-setup.js';
import { Broker } from '../../src/broker.js';
import { resolveConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logging/logger.js';
import { removeDir, tempDataDir } from '../durability/harness.js';

describe('conformance-paging settings', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it('page out every ready message but the next, and read them back in order as a consumer reaches them', async () => {
    const dataDir = await tempDataDir();
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir, managementPort: null, metricsPort: null, logLevel: 'silent', ...PAGING_SETTINGS });
    const broker = new Broker(config, createLogger('silent'));
    const running = await broker.start();
    cleanups.push(async () => {
      await running.close();
      await removeDir(dataDir);
    });
    const conn = await amqp.connect(running.url);
    cleanups.push(() => conn.close());
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('paged', { durable: true });
    const count = 20;
    for (let i = 0; i < count; i++) ch.sendToQueue('paged', Buffer.from(`m${i}`), { persistent: i % 2 === 0 });
    await ch.waitForConfirms();

    const queue = broker.core.vhosts.get('/')!.queues.get('paged')!;
    // the budget's relief runs after the I/O that went over it
    await new Promise((resolve) => setImmediate(resolve));
    expect(queue.messageCount).toBe(count);
    expect(queue.pagedOutCount).toBe(count - 1);
    expect(broker.budget.freed).toBeGreaterThan(0);

    const got: string[] = [];
    await new Promise<void>((resolve) => {
      void ch.consume('paged', (m) => {
        if (m === null) return;
        got.push(m.content.toString());
        ch.ack(m);
        if (got.length === count) resolve();
      });
    });
    expect(got).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
    expect(queue.messageCount).toBe(0);
    expect(queue.pagedOutCount).toBe(0);
  });
});
