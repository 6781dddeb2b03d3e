import { afterEach, describe, expect, it } from 'vitest';
import type { Channel, ChannelModel } from 'amqplib';
import { ReplyCode } from '../../src/protocol/reply-code.js';
import {
  channelErrorCode,
  cleanRestart,
  killRestart,
  openChannel,
  openConnection,
  removeDir,
  tempDataDir,
  TEST_TIMEOUT,
  type BrokerHandle,
  type RestartMode,
} from './harness.js';

const HEADERS_ALL = { 'x-match': 'all', h1: 'v1', h2: 'v2' };
const HEADERS_E2E = { 'x-match': 'any', route: 'e2e', other: 'x' };
const MAX_LENGTH_ARGS = { 'x-max-length': 2 };

async function declareTopology(conn: ChannelModel): Promise<void> {
  const ch = await openChannel(conn);
  await ch.assertExchange('d.ae', 'fanout', { durable: true });
  await ch.assertExchange('d.direct', 'direct', { durable: true, arguments: { 'alternate-exchange': 'd.ae' } });
  await ch.assertExchange('d.fanout', 'fanout', { durable: true });
  await ch.assertExchange('d.topic', 'topic', { durable: true });
  await ch.assertExchange('d.headers', 'headers', { durable: true });
  await ch.assertExchange('d.e2e', 'fanout', { durable: true });
  await ch.assertExchange('d.internal', 'direct', { durable: true, internal: true });
  for (const q of ['q.direct', 'q.fanout', 'q.topic', 'q.headers', 'q.e2e', 'q.internal']) {
    await ch.assertQueue(q, { durable: true });
  }
  await ch.assertQueue('q.maxlen', { durable: true, arguments: MAX_LENGTH_ARGS });
  await ch.bindQueue('q.direct', 'd.direct', 'rk');
  await ch.bindQueue('q.fanout', 'd.fanout', '');
  await ch.bindQueue('q.topic', 'd.topic', 'a.*.c');
  await ch.bindQueue('q.headers', 'd.headers', '', HEADERS_ALL);
  await ch.bindQueue('q.e2e', 'd.e2e', '');
  await ch.bindQueue('q.internal', 'd.internal', 'int');
  // exchange-to-exchange bindings: by routing key, by headers arguments, into an internal exchange
  await ch.bindExchange('d.fanout', 'd.topic', 'e2e.#');
  await ch.bindExchange('d.e2e', 'd.headers', '', HEADERS_E2E);
  await ch.bindExchange('d.internal', 'd.direct', 'int');

  // Things that must not survive a restart.
  await ch.assertExchange('t.direct', 'direct', { durable: false });
  await ch.assertQueue('t.q', { durable: false });
  await ch.bindQueue('t.q', 'd.direct', 'rk2'); // durable exchange → non-durable queue
  await ch.bindQueue('t.q', 't.direct', 'rk');
  await ch.assertQueue('x.q', { durable: true, exclusive: true }); // exclusive: never survives
  await ch.bindQueue('x.q', 'd.fanout', '');
  await ch.close();
}

async function drainBodies(ch: Channel, queue: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) return bodies;
    bodies.push(m.content.toString());
  }
}

function describeTopology(mode: RestartMode): void {
  describe(mode.name, () => {
    let dataDir: string | undefined;
    let broker: BrokerHandle | undefined;
    const conns: ChannelModel[] = [];
    afterEach(async () => {
      for (const c of conns.splice(0)) await c.close().catch(() => {});
      await broker?.stop();
      broker = undefined;
      if (dataDir !== undefined) await removeDir(dataDir);
      dataDir = undefined;
    });

    it('durable exchanges, queues and bindings survive with their arguments; transient and exclusive ones do not', async () => {
      dataDir = await tempDataDir();
      broker = await mode.start(dataDir);
      const conn1 = await openConnection(broker.url);
      conns.push(conn1);
      await declareTopology(conn1);
      await mode.settle(conn1);
      await broker.stop();
      broker = undefined;

      broker = await mode.start(dataDir);
      const conn = await openConnection(broker.url);
      conns.push(conn);
      const ch = await openChannel(conn);

      for (const x of ['d.ae', 'd.direct', 'd.fanout', 'd.topic', 'd.headers', 'd.e2e', 'd.internal']) {
        await ch.checkExchange(x);
      }
      for (const q of ['q.direct', 'q.fanout', 'q.topic', 'q.headers', 'q.e2e', 'q.internal', 'q.maxlen']) {
        expect((await ch.checkQueue(q)).messageCount).toBe(0);
      }
      expect(await channelErrorCode(conn, (c) => c.checkExchange('t.direct'))).toBe(ReplyCode.NotFound);
      expect(await channelErrorCode(conn, (c) => c.checkQueue('t.q'))).toBe(ReplyCode.NotFound);
      expect(await channelErrorCode(conn, (c) => c.checkQueue('x.q'))).toBe(ReplyCode.NotFound);

      // Types and arguments came back: the same declaration is equivalent, a different one is not.
      await ch.assertExchange('d.direct', 'direct', { durable: true, arguments: { 'alternate-exchange': 'd.ae' } });
      await ch.assertExchange('d.internal', 'direct', { durable: true, internal: true });
      // RabbitMQ: alternate-exchange is the exchange argument compared on redeclare.
      expect(
        await channelErrorCode(conn, (c) =>
          c.assertExchange('d.direct', 'direct', { durable: true, arguments: { 'alternate-exchange': 'd.other' } }),
        ),
      ).toBe(ReplyCode.PreconditionFailed);
      await ch.assertQueue('q.maxlen', { durable: true, arguments: MAX_LENGTH_ARGS });
      expect(await channelErrorCode(conn, (c) => c.assertExchange('d.topic', 'direct', { durable: true }))).toBe(
        ReplyCode.PreconditionFailed,
      );
      expect(
        await channelErrorCode(conn, (c) => c.assertQueue('q.maxlen', { durable: true, arguments: { 'x-max-length': 3 } })),
      ).toBe(ReplyCode.PreconditionFailed);
      // spec: publishing to an internal exchange is refused (403) — the flag survived.
      expect(
        await channelErrorCode(conn, async (c) => {
          c.publish('d.internal', 'int', Buffer.from('x'));
          await c.checkQueue('q.internal'); // a round trip so the asynchronous close arrives
        }),
      ).toBe(ReplyCode.AccessRefused);

      // A fresh non-durable t.q: the old binding from d.direct must not route into it.
      await ch.assertQueue('t.q', { durable: false });

      // Routing through the recovered bindings.
      ch.publish('d.direct', 'rk', Buffer.from('direct'));
      ch.publish('d.direct', 'rk2', Buffer.from('to-t.q')); // the binding to the old t.q is gone
      ch.publish('d.direct', 'int', Buffer.from('internal')); // d.direct → d.internal → q.internal
      ch.publish('d.fanout', '', Buffer.from('fanout'));
      ch.publish('d.topic', 'a.b.c', Buffer.from('topic'));
      ch.publish('d.topic', 'e2e.x', Buffer.from('topic-e2e')); // d.topic → d.fanout → q.fanout
      ch.publish('d.headers', '', Buffer.from('headers-all'), { headers: { h1: 'v1', h2: 'v2' } });
      ch.publish('d.headers', '', Buffer.from('headers-partial'), { headers: { h1: 'v1' } }); // matches nothing
      ch.publish('d.headers', '', Buffer.from('headers-e2e'), { headers: { route: 'e2e' } }); // d.headers → d.e2e → q.e2e
      for (const n of ['1', '2', '3']) ch.sendToQueue('q.maxlen', Buffer.from(n));

      expect(await drainBodies(ch, 'q.direct')).toEqual(['direct']);
      expect(await drainBodies(ch, 't.q')).toEqual([]);
      expect(await drainBodies(ch, 'q.internal')).toEqual(['internal']);
      expect(await drainBodies(ch, 'q.fanout')).toEqual(['fanout', 'topic-e2e']);
      expect(await drainBodies(ch, 'q.topic')).toEqual(['topic']);
      expect(await drainBodies(ch, 'q.headers')).toEqual(['headers-all']);
      expect(await drainBodies(ch, 'q.e2e')).toEqual(['headers-e2e']);
      // x-max-length 2 (drop-head) still applies
      expect(await drainBodies(ch, 'q.maxlen')).toEqual(['2', '3']);
    }, TEST_TIMEOUT);
  });
}

describe('durable topology across restarts', () => {
  describeTopology(cleanRestart);
  describeTopology(killRestart);
});
