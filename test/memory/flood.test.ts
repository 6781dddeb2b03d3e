// A flood with nobody consuming: memory must stay bounded whatever the volume. The broker
// runs in a child process (its RSS is read from /proc) with a small memory budget, and is
// sent ten times that budget's worth of persistent messages (durable queue: the durable
// log) and of transient ones (non-durable queue: the spill), without confirms, as fast as
// the client can. Everything is then drained, in order.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BROKER_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { childBrokerFixture, openChannel } from '../durability/harness.js';

const MiB = 1024 * 1024;
const BUDGET = 16 * MiB;
const SIZE = 4096;
const PER_QUEUE = 100_000; // 391 MiB per queue, 781 MiB in all: 49 times the budget
/** what the store may hold back before publishers are held (flow control): 4 MiB of durable batches, 64 MiB of spill writes */
const WRITE_BEHIND = 68 * MiB;
/**
 * The floor the broker's V8 flags put under the old generation's limit (node-flags.ts): V8
 * may hold that much garbage before it collects, by design
 */
const OLD_SPACE_FLOOR = Number(/^--initial-old-space-size=(\d+)$/.exec(BROKER_NODE_FLAGS.find((f) => f.startsWith('--initial-old-space-size=')) ?? '--initial-old-space-size=0')![1]) * MiB;
/** V8's and the allocator's slack: garbage of the messages that went through, not yet returned */
const SLACK = 96 * MiB + OLD_SPACE_FLOOR;

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

describe('memory under a flood', () => {
  const broker = childBrokerFixture();

  it('stays bounded by the budget, not by the volume published, and everything drains in order', async () => {
    const warren = await broker.start(['--queue-memory-window', '0', '--queue-memory-budget', String(BUDGET)]);
    const pid = warren.process.pid!;
    const conn = await broker.connect();
    const ch = await openChannel(conn);
    await ch.assertQueue('flood.durable', { durable: true });
    await ch.assertQueue('flood.transient', { durable: false });
    const base = rssOf(pid);
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 50);
    try {
      const body = Buffer.alloc(SIZE, 7);
      for (let n = 1; n <= PER_QUEUE; n++) {
        body.writeUInt32BE(n, 0);
        const a = ch.sendToQueue('flood.durable', body, { persistent: true });
        const b = ch.sendToQueue('flood.transient', body, { persistent: false });
        if (!a || !b) await new Promise<void>((r) => ch.once('drain', r));
      }
      expect((await ch.checkQueue('flood.durable')).messageCount).toBe(PER_QUEUE);
      expect((await ch.checkQueue('flood.transient')).messageCount).toBe(PER_QUEUE);
      peak = Math.max(peak, rssOf(pid));
    } finally {
      clearInterval(sampler);
    }
    const published = 2 * PER_QUEUE * SIZE;
    // what the broker holds is bounded by the budget, the store's write-behind (flow control
    // caps it) and the garbage of the messages that went through, not by what it was sent
    expect(BUDGET + WRITE_BEHIND + SLACK).toBeLessThan(published / 2);
    expect(peak - base, `RSS grew by ${((peak - base) / MiB).toFixed(0)} MiB for ${(published / MiB).toFixed(0)} MiB published`).toBeLessThan(BUDGET + WRITE_BEHIND + SLACK);

    for (const queue of ['flood.durable', 'flood.transient']) {
      const c = await openChannel(conn);
      await c.prefetch(1000);
      let next = 1;
      await new Promise<void>((resolve, reject) => {
        void c.consume(queue, (m) => {
          if (m === null) return;
          const n = m.content.readUInt32BE(0);
          if (n !== next || m.content.length !== SIZE) reject(new Error(`${queue}: got ${n} (${m.content.length} bytes), expected ${next}`));
          next++;
          c.ack(m);
          if (next > PER_QUEUE) resolve();
        });
      });
      await c.close();
    }
  }, 180_000);
});
