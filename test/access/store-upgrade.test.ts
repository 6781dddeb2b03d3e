import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker } from '../../src/index.js';
import { FORMAT_KEY, FORMAT_VERSION } from '../../src/store/keys.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/store-format-1', import.meta.url));
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function fixtureCopy(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'warren-format1-'));
  dirs.push(dir);
  await cp(FIXTURE, dir, { recursive: true });
  return dir;
}

async function drain(ch: amqp.Channel, queue: string): Promise<amqp.GetMessage[]> {
  const out: amqp.GetMessage[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) return out;
    out.push(m);
  }
}

describe('store format 1 → 2, in place (test/fixtures/store-format-1.md)', () => {
  it('everything the fixture lists comes back, and guest has full permissions on /', { timeout: 30_000 }, async () => {
    const dir = await fixtureCopy();
    const broker = await startBroker({ dataDir: dir });
    try {
      expect(broker.admin.users().map((u) => [u.name, u.tags])).toEqual([['guest', ['administrator']]]);
      expect(broker.admin.permissions()).toEqual([{ user: 'guest', vhost: '/', configure: '.*', write: '.*', read: '.*' }]);
      expect(broker.admin.vhosts().map((v) => v.name)).toEqual(['/']);

      const conn = await amqp.connect(broker.url); // guest/guest logs in on the upgraded store
      const ch = await conn.createChannel();
      // exchanges (passive: they exist) and their arguments (redeclare must be equivalent)
      await ch.assertExchange('fx.topic', 'topic', { durable: true });
      await ch.assertExchange('fx.ae', 'fanout', { durable: true });
      await ch.assertExchange('fx.direct', 'direct', { durable: true, arguments: { 'alternate-exchange': 'fx.ae' } });
      await ch.assertQueue('fx.orders', { durable: true, arguments: { 'x-max-priority': 5, 'x-dead-letter-exchange': 'fx.ae' } });
      await ch.assertQueue('fx.empty', { durable: true, arguments: { 'x-message-ttl': 3600000 } });
      expect((await ch.checkQueue('fx.orders')).messageCount).toBe(10);
      expect((await ch.checkQueue('fx.audit')).messageCount).toBe(11);
      expect((await ch.checkQueue('fx.empty')).messageCount).toBe(0);

      const orders = await drain(ch, 'fx.orders');
      expect(orders[0]!.content.toString()).toBe('order-5');
      expect(orders[0]!.fields.redelivered).toBe(true);
      expect(orders.map((m) => m.content.toString()).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `order-${i}`).sort());
      for (const m of orders) {
        const i = Number(m.content.toString().slice(6));
        expect(m.properties.messageId).toBe(`m${i}`);
        expect(m.properties.headers).toMatchObject({ n: i });
      }
      const audit = await drain(ch, 'fx.audit');
      expect(audit.slice(0, 10).map((m) => m.content.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `order-${i}`));
      // .equals, not toEqual: a failing diff of 200 kB would take the runner forever
      expect(audit[10]!.content.equals(Buffer.alloc(200_000, 7))).toBe(true);

      // the bindings: fx.topic → fx.direct (orders.#) → fx.orders (orders.new); fx.topic → fx.audit (#)
      ch.publish('fx.topic', 'orders.new', Buffer.from('again'));
      // fx.direct's alternate exchange fx.ae → fx.audit
      ch.publish('fx.direct', 'unbound', Buffer.from('via ae'));
      await ch.checkQueue('fx.orders');
      expect((await drain(ch, 'fx.orders')).map((m) => m.content.toString())).toEqual(['again']);
      expect((await drain(ch, 'fx.audit')).map((m) => m.content.toString()).sort()).toEqual(['again', 'via ae']);
      await conn.close();
    } finally {
      await broker.close();
    }
    const raw = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    expect((await raw.get(FORMAT_KEY))!.readUInt32BE(0)).toBe(FORMAT_VERSION);
    await raw.close();
  });

  it('a format-1 store upgraded with --default-user gets that user instead of guest', async () => {
    const dir = await fixtureCopy();
    const broker = await startBroker({ dataDir: dir, defaultUser: { username: 'app', password: 'pw' } });
    try {
      expect(broker.admin.users().map((u) => u.name)).toEqual(['app']);
      const conn = await amqp.connect(broker.url.replace('guest:guest', 'app:pw'));
      expect((await (await conn.createChannel()).checkQueue('fx.orders')).messageCount).toBe(10);
      await conn.close();
    } finally {
      await broker.close();
    }
  });
});

describe('store format 3 → 4: a checksum over each stored message', () => {
  it('the upgrade rewrites every message of the format-1 fixture with its checksum; a value damaged afterwards fails it', { timeout: 30_000 }, async () => {
    const { LevelStore } = await import('../../src/store/level-store.js');
    const { decodeMessage, DamagedRecordError, kindRange, Prefix } = await import('../../src/store/keys.js');
    const { createLogger } = await import('../../src/logging/logger.js');
    const dir = await fixtureCopy();
    const store = new LevelStore(dir, createLogger('silent'));
    await store.open();
    await store.close();
    const raw = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    try {
      expect((await raw.get(FORMAT_KEY))!.readUInt32BE(0)).toBe(FORMAT_VERSION);
      expect(FORMAT_VERSION).toBeGreaterThanOrEqual(4);
      const messages = await raw.iterator(kindRange(Prefix.Message)).all();
      // the ten orders (one body each, shared by two queues) and the large body
      expect(messages).toHaveLength(11);
      const bodies = messages.map(([, v]) => decodeMessage(v).body);
      expect(bodies.filter((b) => b.toString().startsWith('order-'))).toHaveLength(10);
      expect(bodies.some((b) => b.equals(Buffer.alloc(200_000, 7)))).toBe(true);
      // no upgrade progress left behind
      expect((await raw.keys(kindRange(Prefix.Meta)).all()).map((k) => k.toString('latin1', 1))).toEqual(['format']);
      const damaged = Buffer.from(messages[0]![1]);
      damaged[damaged.length - 1]! ^= 0xff;
      expect(() => decodeMessage(damaged)).toThrow(DamagedRecordError);
    } finally {
      await raw.close();
    }
  });
});
