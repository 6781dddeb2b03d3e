import type { ChannelModel } from 'amqplib';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, consumeN, openChannel, openConfirmChannel, uniqueName } from './support/index.js';

// Bodies of every size, from several connections at once, come back byte for byte: the
// broker reads each connection's bytes however the socket cuts them (frames split across
// reads, a read holding many frames or the middle of one big body), and what one
// connection sends never mixes with another's.

const conns: ChannelModel[] = [];
afterAll(async () => {
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
});

/** deterministic bytes that differ per publisher and message */
function body(size: number, publisher: number, i: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (publisher * 7919 + i * 104_729 + 1) >>> 0;
  for (let k = 0; k < size; k++) {
    x = (x * 1_103_515_245 + 12_345) >>> 0;
    b[k] = x >>> 24;
  }
  return b;
}

// sizes around the frame size and the socket read sizes, tiny and several frames long
const SIZES = [0, 1, 100, 4_088, 4_096, 65_535, 65_536, 131_064, 131_072, 200_000, 262_144, 300_001, 7, 16_384];

describe('message bodies', () => {
  it('3 connections publishing at once: every body arrives intact and in order', async () => {
    const publishers = 3;
    const rounds = 3;
    const queues: string[] = [];
    const sent: string[][] = [];
    const setup = await connect();
    conns.push(setup);
    const admin = await openChannel(setup);
    for (let p = 0; p < publishers; p++) {
      const q = uniqueName('bodies');
      await admin.assertQueue(q, { durable: false, autoDelete: false, exclusive: false });
      queues.push(q);
      sent.push([]);
    }
    await Promise.all(
      Array.from({ length: publishers }, async (_, p) => {
        const conn = await connect();
        conns.push(conn);
        const ch = await openConfirmChannel(conn);
        for (let r = 0; r < rounds; r++) {
          for (let i = 0; i < SIZES.length; i++) {
            const b = body(SIZES[i]!, p, r * 100 + i);
            sent[p]!.push(createHash('sha1').update(b).digest('hex') + ':' + b.length);
            ch.sendToQueue(queues[p]!, b, { persistent: i % 2 === 0, headers: { p, i } });
          }
        }
        await ch.waitForConfirms();
      }),
    );
    for (let p = 0; p < publishers; p++) {
      const got = await consumeN(admin, queues[p]!, sent[p]!.length);
      expect(got.map((m) => createHash('sha1').update(m.content).digest('hex') + ':' + m.content.length)).toEqual(sent[p]);
      await admin.deleteQueue(queues[p]!);
    }
  });
});
