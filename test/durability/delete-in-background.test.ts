// Deleting or purging a big durable queue must not hold back other queues: its index
// entries go in the background, in small chunks beside the group commit, after the
// delete-ok / purge-ok.
// The store's deletion is held midway here (a slow disk read), and a confirm on another
// queue still arrives while it is held.
import amqp, { type ChannelModel } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker.js';
import { resolveConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logging/logger.js';
import { LevelStore } from '../../src/store/level-store.js';
import { removeDir, tempDataDir } from './harness.js';

/** A store whose background deletion can be held after its first chunk. */
class HeldDeletionStore extends LevelStore {
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;
  private firstChunk: (() => void) | null = null;
  chunksRead = 0;

  /** holds the deletion from its second chunk on; resolves once the first chunk was read */
  holdAfterFirstChunk(): Promise<void> {
    this.gate = new Promise<void>((resolve) => (this.openGate = resolve));
    return new Promise<void>((resolve) => (this.firstChunk = resolve));
  }

  release(): void {
    this.openGate?.();
    this.gate = null;
  }

  private async gateRead(): Promise<void> {
    this.chunksRead++;
    if (this.chunksRead === 1) this.firstChunk?.();
    else if (this.gate !== null) await this.gate;
  }

  // a single node deletes in windows; a cluster leader row by row: both are held
  protected override async readValues(gte: Buffer, lt: Buffer): Promise<Buffer[]> {
    await this.gateRead();
    return super.readValues(gte, lt);
  }

  protected override async readRange(range: { gt?: Buffer; gte?: Buffer; lt: Buffer; limit: number }): Promise<Array<[Buffer, Buffer]>> {
    await this.gateRead();
    return super.readRange(range);
  }
}

describe('deleting and purging big queues in the background', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function start(): Promise<{ store: HeldDeletionStore; conn: ChannelModel }> {
    const dataDir = await tempDataDir();
    const logger = createLogger('silent');
    const store = new HeldDeletionStore(dataDir, logger);
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir, memoryHighWatermark: 0, diskFreeLimit: 0, managementPort: null, metricsPort: null, logLevel: 'silent' });
    const running = await new Broker(config, logger, store).start();
    const conn = await amqp.connect(running.url);
    conn.on('error', () => {});
    cleanups.push(async () => {
      store.release();
      await conn.close().catch(() => {});
      await running.close();
      await removeDir(dataDir);
    });
    return { store, conn };
  }

  async function fill(conn: ChannelModel, queue: string, count: number): Promise<void> {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true });
    const body = Buffer.alloc(64, 3);
    for (let i = 0; i < count; i++) {
      if (!ch.sendToQueue(queue, body, { persistent: true })) await new Promise<void>((r) => ch.once('drain', r));
    }
    await ch.waitForConfirms();
    await ch.close();
  }

  for (const how of ['delete', 'purge'] as const) {
    it(`${how}: another queue's confirm does not wait for the ${how}d queue's entries to go`, async () => {
      const { store, conn } = await start();
      await fill(conn, 'big', 20_000); // 79 reads of the background deletion (windows of 256)
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue('other', { durable: true });

      const firstChunk = store.holdAfterFirstChunk();
      if (how === 'delete') expect((await ch.deleteQueue('big')).messageCount).toBe(20_000);
      else expect((await ch.purgeQueue('big')).messageCount).toBe(20_000);
      await firstChunk;
      expect(store.pendingDeletions).toBe(1);

      // a persistent publish to another queue is confirmed while the deletion is held midway
      await new Promise<void>((resolve, reject) => ch.sendToQueue('other', Buffer.from('x'), { persistent: true }, (err) => (err ? reject(err) : resolve())));
      expect(store.pendingDeletions).toBe(1);
      expect(store.chunksRead).toBeLessThanOrEqual(2); // (the second read waits at the gate)

      store.release();
      await store.deletionsDone();
      expect(store.pendingDeletions).toBe(0);
      if (how === 'purge') {
        // the purged queue is empty and usable; what comes next is delivered
        ch.sendToQueue('big', Buffer.from('after'), { persistent: true });
        await ch.waitForConfirms();
        const m = await ch.get('big', { noAck: true });
        expect(m && m.content.toString()).toBe('after');
      }
      expect((await ch.checkQueue('other')).messageCount).toBe(1);
      if (how === 'delete') {
        const probe = await conn.createChannel();
        probe.on('error', () => {});
        await expect(probe.checkQueue('big')).rejects.toThrow(/404/);
      }
    }, 60_000);
  }
});
