import { afterEach, describe, expect, it } from 'vitest';
import { AccessStore } from '../../src/store/access-records.js';
import type { FieldTable } from '../../src/protocol/field-types.js';
import type { BindingRecord, CommitListener, EntryRecord, MessageRecord, StoredEntry, Store } from '../../src/store/store.js';

export interface StoreFixture {
  store: Store;
  /** closes the store and opens the same data again (a restart); absent when the backend cannot */
  reopen?: () => Promise<Store>;
  /** closes whatever is open and removes the data */
  cleanup?: () => Promise<void>;
}

export function message(n: number, bodySize = 10): MessageRecord {
  return {
    exchange: `ex-${n}`,
    routingKey: `rk.${n}`,
    rawProperties: Buffer.from([0x80, 0x00, n & 0xff]),
    body: Buffer.alloc(bodySize, n & 0xff),
  };
}

export function entry(queueId: number, priority: number, seq: number, messageId: number, refs = 1, extra: Partial<EntryRecord> = {}): EntryRecord {
  return { queueId, priority, seq, messageId, refs, redelivered: false, transient: false, expiresAt: 0, ...extra };
}

const pos = (e: { priority: number; seq: number }): string => `${e.priority}/${e.seq}`;
/** the n a stored message(n) was made with */
const numberOf = (e: StoredEntry): number => Number(e.message.exchange.slice(3));

function typedArgs(): FieldTable {
  const nested: FieldTable = new Map([['inner', { type: 'l', value: -5n }]]);
  return new Map([
    ['bool', { type: 't', value: true }],
    ['i8', { type: 'b', value: -3 }],
    ['u8', { type: 'B', value: 200 }],
    ['i16', { type: 's', value: -300 }],
    ['u16', { type: 'u', value: 60000 }],
    ['i32', { type: 'I', value: 1 }],
    ['u32', { type: 'i', value: 4000000000 }],
    ['i64', { type: 'l', value: 1n }],
    ['f32', { type: 'f', value: 1.5 }],
    ['f64', { type: 'd', value: 2.25 }],
    ['dec', { type: 'D', value: { scale: 2, value: 12345 } }],
    ['str', { type: 'S', value: Buffer.from('héllo') }],
    ['bytes', { type: 'x', value: Buffer.from([0, 1, 255]) }],
    ['arr', { type: 'A', value: [{ type: 'I', value: 7 }, { type: 'S', value: Buffer.from('x') }] }],
    ['ts', { type: 'T', value: 1700000000n }],
    ['table', { type: 'F', value: nested }],
    ['void', { type: 'V', value: null }],
  ]);
}

/** Delivery-order positions used by the ordering tests: priorities 0/5/255, seqs across byte boundaries. */
const PRIORITIES = [0, 5, 255];
const SEQS = [1, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32 + 5, 2 ** 40];

/**
 * The behaviour every Store backend shares. `makeStore` returns an opened store
 * on fresh, empty data.
 */
/**
 * `bodySize`: the body of every message the contract writes without a size of its own (a
 * store that keeps big bodies elsewhere runs the contract again with big ones).
 */
export function runStoreContract(name: string, makeStore: () => Promise<StoreFixture>, bodySize = 10): void {
  describe(`Store contract: ${name}`, () => {
    const fixtures: StoreFixture[] = [];
    const make = async (): Promise<StoreFixture> => {
      const f = await makeStore();
      fixtures.push(f);
      return f;
    };
    afterEach(async () => {
      for (const f of fixtures.splice(0)) await f.cleanup?.();
    });

    /** an open store with 3 priorities × 8 seqs in queue 7 (written in scrambled order) and a few in queue 8 */
    async function populated(): Promise<{ f: StoreFixture; store: Store; expected: string[]; del: (queueId: number, p: number, s: number) => boolean }> {
      const f = await make();
      const store = f.store;
      const puts: [number, number][] = [];
      for (const p of PRIORITIES) for (const s of SEQS) puts.push([p, s]);
      // scramble deterministically: reverse and interleave
      const scrambled = [...puts.filter((_, i) => i % 2 === 1).reverse(), ...puts.filter((_, i) => i % 2 === 0)];
      let n = 1;
      const ids = new Map<string, number>();
      const put = (queueId: number, p: number, s: number): void => {
        const id = store.putMessage(message(n++, bodySize));
        ids.set(`${queueId}:${p}/${s}`, id);
        store.putEntry(entry(queueId, p, s, id));
      };
      for (const [p, s] of scrambled) put(7, p, s);
      for (const s of [1, 2, 3]) put(8, 5, s);
      const expected: string[] = [];
      for (const p of [...PRIORITIES].sort((a, b) => b - a)) for (const s of SEQS) expected.push(`${p}/${s}`);
      // deletes an entry of the population (a position never written: a made-up message id)
      const del = (queueId: number, p: number, s: number): boolean => store.deleteEntry(queueId, p, s, ids.get(`${queueId}:${p}/${s}`) ?? 1_000_000, 1);
      return { f, store, expected, del };
    }

    it('access records: put, delete, load by kind (in key order); vhosts can be deleted; all survive a reopen', async () => {
      const f = await make();
      let store = f.store;
      const access = new AccessStore(store);
      store.putVhost('/');
      store.putVhost('gone');
      store.deleteVhost('gone');
      access.putUser({ name: 'bob', passwordHash: 'h', hashingAlgorithm: 'rabbit_password_hashing_sha256', tags: ['monitoring'] });
      access.putUser({ name: 'alice', passwordHash: '', hashingAlgorithm: 'rabbit_password_hashing_sha256', tags: [] });
      access.putUser({ name: 'carol', passwordHash: '', hashingAlgorithm: 'rabbit_password_hashing_md5', tags: [] });
      access.deleteUser('carol');
      access.putPermission({ user: 'bob', vhost: '/', configure: '.*', write: '', read: '^r' });
      access.putTopicPermission({ user: 'bob', vhost: '/', exchange: 'amq.topic', write: '^a', read: '.*' });
      access.putVhostMetadata({ vhost: '/', description: 'root', tags: ['t'] });
      access.putVhostLimits({ vhost: '/', maxQueues: 3 });
      access.markSeeded();
      await store.flush();
      if (f.reopen) store = await f.reopen();
      const loaded = await new AccessStore(store).load();
      // key order: the u16 length prefix first
      expect(loaded.users.map((u) => u.name)).toEqual(['bob', 'alice']);
      expect(loaded.users[0]).toEqual({ name: 'bob', passwordHash: 'h', hashingAlgorithm: 'rabbit_password_hashing_sha256', tags: ['monitoring'] });
      expect(loaded.permissions).toEqual([{ user: 'bob', vhost: '/', configure: '.*', write: '', read: '^r' }]);
      expect(loaded.topicPermissions).toEqual([{ user: 'bob', vhost: '/', exchange: 'amq.topic', write: '^a', read: '.*' }]);
      expect(loaded.vhostMetadata).toEqual([{ vhost: '/', description: 'root', tags: ['t'] }]);
      expect(loaded.vhostLimits).toEqual([{ vhost: '/', maxQueues: 3 }]);
      expect(loaded.seeded).toBe(true);
      expect((await store.loadTopology()).vhosts).toEqual(['/']);
    });

    it('round-trips topology, field tables keeping their types', async () => {
      const f = await make();
      let store = f.store;
      const args = typedArgs();
      store.putVhost('/');
      store.putVhost('other');
      store.putExchange({ vhost: '/', name: 'ex.a', type: 'topic', autoDelete: false, internal: true, arguments: args });
      store.putExchange({ vhost: '/', name: 'gone', type: 'direct', autoDelete: false, internal: false, arguments: new Map() });
      store.putExchange({ vhost: 'other', name: 'ex.a', type: 'fanout', autoDelete: true, internal: false, arguments: new Map() });
      store.putQueue({ vhost: '/', name: 'q1', id: 3, autoDelete: false, arguments: new Map([['x-max-priority', { type: 'B', value: 10 }]]) });
      store.putQueue({ vhost: '/', name: 'q2', id: 4, autoDelete: true, arguments: new Map() });
      const b1: BindingRecord = { vhost: '/', source: 'ex.a', destination: 'q1', destinationKind: 'queue', routingKey: 'a.#', arguments: args };
      // differs from b3 only by the argument's type: RabbitMQ keeps both bindings
      const b2: BindingRecord = { vhost: '/', source: 'ex.a', destination: 'q1', destinationKind: 'queue', routingKey: 'k', arguments: new Map([['n', { type: 'I', value: 1 }]]) };
      const b3: BindingRecord = { vhost: '/', source: 'ex.a', destination: 'q1', destinationKind: 'queue', routingKey: 'k', arguments: new Map([['n', { type: 'l', value: 1n }]]) };
      const b4: BindingRecord = { vhost: '/', source: 'ex.a', destination: 'q1', destinationKind: 'exchange', routingKey: 'k', arguments: new Map() };
      for (const b of [b1, b2, b3, b4]) store.putBinding(b);
      store.deleteBinding(b4);
      store.deleteExchange('/', 'gone');
      store.putQueue({ vhost: '/', name: 'q3', id: 9, autoDelete: false, arguments: new Map() });
      store.deleteQueue('/', 'q3', 9);
      await store.flush();

      const check = async (s: Store): Promise<void> => {
        const t = await s.loadTopology();
        expect([...t.vhosts].sort()).toEqual(['/', 'other']);
        const exA = t.exchanges.find((e) => e.vhost === '/' && e.name === 'ex.a');
        expect(exA).toEqual({ vhost: '/', name: 'ex.a', type: 'topic', autoDelete: false, internal: true, arguments: args });
        expect(t.exchanges.map((e) => `${e.vhost}:${e.name}`).sort()).toEqual(['/:ex.a', 'other:ex.a']);
        expect([...t.queues].sort((a, b) => a.id - b.id)).toEqual([
          { vhost: '/', name: 'q1', id: 3, autoDelete: false, arguments: new Map([['x-max-priority', { type: 'B', value: 10 }]]) },
          { vhost: '/', name: 'q2', id: 4, autoDelete: true, arguments: new Map() },
        ]);
        expect(t.bindings).toHaveLength(3);
        for (const b of [b1, b2, b3]) expect(t.bindings).toContainEqual(b);
        // the typed values survive exactly (int32 1 is not int64 1)
        const types = t.bindings.filter((b) => b.routingKey === 'k').map((b) => b.arguments.get('n')!.type).sort();
        expect(types).toEqual(['I', 'l']);
      };
      await check(store);
      if (f.reopen) {
        store = await f.reopen();
        await check(store);
      }
    });

    it('reads entries in delivery order: priority desc, then seq asc (across byte boundaries)', async () => {
      const { f, store, expected } = await populated();
      await store.flush();
      const read = await store.readEntries(7, null, 1000);
      expect(read.map(pos)).toEqual(expected);
      for (const e of read) {
        expect(e.queueId).toBe(7);
        expect(e.message).toEqual(message(numberOf(e), bodySize));
        expect(e.refs).toBe(1);
        expect(e.redelivered).toBe(false);
        expect(e.transient).toBe(false);
      }
      expect((await store.readEntries(8, null, 1000)).map(pos)).toEqual(['5/1', '5/2', '5/3']);
      expect(await store.readEntries(99, null, 10)).toEqual([]);
      if (f.reopen) {
        const again = await f.reopen();
        expect((await again.readEntries(7, null, 1000)).map(pos)).toEqual(expected);
      }
    });

    it('pages with `after`, strictly after the given position', async () => {
      const { store, expected } = await populated();
      const page = async (): Promise<string[]> => {
        const got: string[] = [];
        let after: { priority: number; seq: number } | null = null;
        for (;;) {
          const batch: StoredEntry[] = await store.readEntries(7, after, 5);
          if (batch.length === 0) break;
          expect(batch.length).toBeLessThanOrEqual(5);
          got.push(...batch.map(pos));
          const last = batch[batch.length - 1]!;
          after = { priority: last.priority, seq: last.seq };
        }
        return got;
      };
      await store.flush();
      expect(await page()).toEqual(expected);
      // a position that holds no entry: continue from where it would sort
      expect((await store.readEntries(7, { priority: 5, seq: 300 }, 3)).map(pos)).toEqual(['5/65535', '5/65536', `5/${2 ** 32 - 1}`]);
      expect((await store.readEntries(7, { priority: 4, seq: 0 }, 2)).map(pos)).toEqual(['0/1', '0/255']);
      expect(await store.readEntries(7, { priority: 0, seq: 2 ** 40 }, 10)).toEqual([]);
      expect(await store.readEntries(7, null, 0)).toEqual([]);
    });

    it('entry flags and expiry round-trip (pending, durable and after reopen)', async () => {
      const f = await makeStore();
      const store = f.store;
      store.putEntry(entry(3, 0, 1, store.putMessage(message(1, bodySize)), 1, { redelivered: true, expiresAt: 1_900_000_000_123 }));
      const check = async (s: typeof store): Promise<void> => {
        const [e] = await s.readEntries(3, null, 10);
        expect(e).toMatchObject({ seq: 1, redelivered: true, transient: false, expiresAt: 1_900_000_000_123 });
      };
      await store.flush();
      await check(store);
      if (f.reopen) await check(await f.reopen());
      await f.cleanup?.();
    });

    it('deleteEntry removes one entry, pending or durable', async () => {
      const { f, store, expected, del } = await populated();
      del(7, 255, 256); // still pending
      await store.flush();
      del(7, 0, 2 ** 40); // durable
      del(7, 5, 12345); // never existed: harmless
      const want = expected.filter((p) => p !== '255/256' && p !== `0/${2 ** 40}`);
      await store.flush();
      expect((await store.readEntries(7, null, 1000)).map(pos)).toEqual(want);
      del(7, 255, 1);
      del(7, 255, 255);
      await store.flush();
      expect((await store.readEntries(7, null, 3)).map(pos)).toEqual(['255/65535', '255/65536', `255/${2 ** 32 - 1}`]);
      if (f.reopen) {
        const again = await f.reopen();
        expect((await again.readEntries(7, null, 1000)).map(pos)).toEqual(want.slice(2));
      }
    });

    it('an updated entry (put again at the same position) replaces the old one', async () => {
      const f = await make();
      const store = f.store;
      const id = store.putMessage(message(1, bodySize));
      store.putEntry(entry(1, 0, 1, id));
      await store.flush();
      store.updateEntry(entry(1, 0, 1, id, 1, { redelivered: true }));
      await store.flush();
      expect((await store.readEntries(1, null, 10)).map((e) => e.redelivered)).toEqual([true]);
      // updated then deleted in one window: the durable entry must go too
      store.updateEntry(entry(1, 0, 1, id, 1, { redelivered: true }));
      expect(store.deleteEntry(1, 0, 1, id, 1)).toBe(false);
      await store.flush();
      expect(await store.readEntries(1, null, 10)).toEqual([]);
      if (f.reopen) expect(await (await f.reopen()).readEntries(1, null, 10)).toEqual([]);
    });

    it('deleteQueue removes the record and only that queue’s entries', async () => {
      const { f, store, expected } = await populated();
      store.putQueue({ vhost: '/', name: 'seven', id: 7, autoDelete: false, arguments: new Map() });
      store.putQueue({ vhost: '/', name: 'eight', id: 8, autoDelete: false, arguments: new Map() });
      store.putQueue({ vhost: '/', name: 'six', id: 6, autoDelete: false, arguments: new Map() });
      store.putEntry(entry(6, 0, 1, store.putMessage(message(500, bodySize))));
      await store.flush();
      expect((await store.readEntries(7, null, 1000)).map(pos)).toEqual(expected);
      store.putEntry(entry(7, 0, 3, store.putMessage(message(501, bodySize)))); // pending when the queue goes
      store.deleteQueue('/', 'seven', 7);
      expect(await store.readEntries(7, null, 1000)).toEqual([]);
      await store.deletionsDone();
      await store.flush();
      expect(await store.readEntries(7, null, 1000)).toEqual([]);
      expect((await store.readEntries(8, null, 1000)).map(pos)).toEqual(['5/1', '5/2', '5/3']);
      expect((await store.readEntries(6, null, 1000)).map(pos)).toEqual(['0/1']);
      expect((await store.loadTopology()).queues.map((q) => q.name).sort()).toEqual(['eight', 'six']);
      const check = async (s: Store): Promise<void> => {
        const info = await s.recover();
        expect(info.queues.map((q) => [q.queueId, q.count])).toEqual([
          [6, 1],
          [8, 3],
        ]);
      };
      await check(store);
      if (f.reopen) await check(await f.reopen());
    });

    /**
     * Whether the store still holds message `id`'s body: an index entry written with
     * updateEntry (which takes no reference) in a queue of its own reads back only when the
     * body is there. Probes are left in place: call this at the end of a check.
     */
    let probeSeq = 0;
    async function bodyExists(store: Store, id: number): Promise<boolean> {
      const seq = ++probeSeq;
      store.updateEntry(entry(999_999, 0, seq, id, 2));
      await store.flush();
      const got = await store.readEntries(999_999, { priority: 0, seq: seq - 1 }, 1);
      return got.length === 1 && got[0]!.seq === seq;
    }

    it('deleteQueue releases every entry the queue still had: a body stays while another queue holds it', async () => {
      for (const flushFirst of [false, true]) {
        const f = await make();
        const store = f.store;
        store.putQueue({ vhost: '/', name: 'q1', id: 1, autoDelete: false, arguments: new Map() });
        store.putQueue({ vhost: '/', name: 'q2', id: 2, autoDelete: false, arguments: new Map() });
        store.putQueue({ vhost: '/', name: 'q3', id: 3, autoDelete: false, arguments: new Map() });
        const [m1, m2, m3, m4, m5] = [1, 2, 3, 4, 5].map((n) => store.putMessage(message(n, bodySize))) as [number, number, number, number, number];
        store.putEntry(entry(1, 0, 1, m1, 2)); // shared with q2, still held by q1
        store.putEntry(entry(2, 0, 1, m1, 2));
        store.putEntry(entry(1, 0, 2, m2, 2)); // shared with q2, acked in q1 before the delete
        store.putEntry(entry(2, 0, 2, m2, 2));
        store.putEntry(entry(1, 0, 3, m3, 1)); // only in q1
        store.putEntry(entry(1, 5, 4, m4, 3)); // shared three ways, another priority
        store.putEntry(entry(2, 0, 3, m4, 3));
        store.putEntry(entry(3, 0, 1, m4, 3));
        store.putEntry(entry(1, 0, 5, m5, 1, { transient: true })); // a paged transient copy
        if (flushFirst) await store.flush();
        store.updateEntry(entry(1, 0, 1, m1, 2, { redelivered: true })); // rewritten while (maybe) on disk
        store.deleteEntry(1, 0, 2, m2, 2);
        store.deleteQueue('/', 'q1', 1);
        expect(await store.readEntries(1, null, 10)).toEqual([]);
        await store.deletionsDone();
        await store.flush();
        expect(store.pendingDeletions).toBe(0);
        expect(await store.readEntries(1, null, 10)).toEqual([]);
        expect((await store.readEntries(2, null, 10)).map((e) => [e.messageId, e.message.body.equals(message(numberOf(e), bodySize).body)])).toEqual([
          [m1, true],
          [m2, true],
          [m4, true],
        ]);
        // q2 and q3 let go: each body goes with its last holder
        store.deleteEntry(2, 0, 1, m1, 2);
        store.deleteEntry(2, 0, 2, m2, 2);
        store.deleteEntry(2, 0, 3, m4, 3);
        await store.flush();
        expect((await store.readEntries(3, null, 10)).map((e) => e.messageId)).toEqual([m4]);
        store.deleteEntry(3, 0, 1, m4, 3);
        for (const id of [m1, m2, m3, m4, m5]) expect(await bodyExists(store, id), `message ${id}`).toBe(false);
      }
    });

    it('recovery finishes an interrupted queue delete: a shared body is freed once its last live holder goes', async () => {
      const f = await make();
      let store = f.store;
      store.putQueue({ vhost: '/', name: 'live', id: 2, autoDelete: false, arguments: new Map() });
      // queue 9 has entries but no record: a delete interrupted before its range was cleared
      const m1 = store.putMessage(message(1, bodySize)); // shared by the orphan and the live queue: kept
      store.putEntry(entry(9, 0, 1, m1, 2));
      store.putEntry(entry(2, 0, 1, m1, 2));
      const m2 = store.putMessage(message(2, bodySize)); // shared, but both holders were orphans: freed
      store.putEntry(entry(9, 0, 2, m2, 2));
      store.putEntry(entry(9, 0, 3, m2, 2));
      const m3 = store.putMessage(message(3, bodySize)); // the orphan's own
      store.putEntry(entry(9, 0, 4, m3, 1));
      await store.flush();
      if (f.reopen) store = await f.reopen();
      const info = await store.recover();
      expect(info.queues.map((q) => [q.queueId, q.count])).toEqual([[2, 1]]);
      await store.deletionsDone();
      await store.flush();
      expect(await store.readEntries(9, null, 10)).toEqual([]);
      expect((await store.readEntries(2, null, 10)).map((e) => e.messageId)).toEqual([m1]);
      store.deleteEntry(2, 0, 1, m1, 2);
      for (const id of [m1, m2, m3]) expect(await bodyExists(store, id), `message ${id}`).toBe(false);
    });

    it('ids: messages and queues get ids never handed out before, across a reopen', async () => {
      const f = await make();
      let store = f.store;
      store.putQueue({ vhost: '/', name: 'a', id: store.allocateQueueId(), autoDelete: false, arguments: new Map() });
      const q2 = store.allocateQueueId();
      const ids = [store.putMessage(message(1, bodySize)), store.putMessage(message(2, bodySize)), store.putMessage(message(3, bodySize))];
      expect(new Set(ids).size).toBe(3);
      store.putEntry(entry(q2, 0, 1, ids[2]!)); // a queue known only from the index
      store.putEntry(entry(77, 0, 1, ids[0]!)); // and an entry of a queue id the store never handed out
      await store.flush();
      if (f.reopen) store = await f.reopen();
      await store.recover();
      expect(store.putMessage(message(4, bodySize))).toBeGreaterThan(Math.max(...ids));
      expect(store.allocateQueueId()).toBeGreaterThan(77);
    });

    it('afterCommit: called once per batch, after the batch, and asynchronously when nothing is pending', async () => {
      const f = await make();
      const store = f.store;
      const calls: (Error | null)[] = [];
      const listener: CommitListener = { batchCommitted: (e) => calls.push(e) };

      // nothing pending: called back, but never synchronously
      await new Promise<void>((resolve) => {
        store.afterCommit({ batchCommitted: () => resolve() });
        expect(calls).toEqual([]);
      });

      const before = store.openBatchId;
      store.putEntry(entry(1, 0, 1, store.putMessage(message(1, bodySize))));
      store.afterCommit(listener);
      store.afterCommit(listener); // registering twice = once
      expect(calls).toEqual([]);
      await new Promise<void>((resolve) => store.afterCommit({ batchCommitted: () => resolve() }));
      expect(calls).toEqual([null]);
      expect(store.openBatchId).not.toBe(before);
      expect((await store.readEntries(1, null, 10)).map(pos)).toEqual(['0/1']);
      await store.flush();
      expect(calls).toEqual([null]);
    });

    it('recover(): per-queue counts, bytes and last seq; shared refs; transient entries dropped', async () => {
      const f = await make();
      let store = f.store;
      store.putQueue({ vhost: '/', name: 'a', id: 1, autoDelete: false, arguments: new Map() });
      store.putQueue({ vhost: '/', name: 'b', id: 2, autoDelete: false, arguments: new Map() });
      store.putQueue({ vhost: '/', name: 'empty', id: 41, autoDelete: false, arguments: new Map() });
      // m10 fanned out to both queues (refs 2); m11 only in a; m12 in a, b and b again (refs 3)
      const m10 = store.putMessage(message(10, 100));
      store.putEntry(entry(1, 0, 1, m10, 2));
      store.putEntry(entry(2, 0, 1, m10, 2));
      const m11 = store.putMessage(message(11, 7));
      store.putEntry(entry(1, 3, 2, m11));
      const m12 = store.putMessage(message(12, 1000));
      store.putEntry(entry(1, 0, 3, m12, 3));
      store.putEntry(entry(2, 0, 2, m12, 3));
      store.putEntry(entry(2, 9, 2 ** 33, m12, 3));
      // a paged-out transient message: gone after a restart
      const m13 = store.putMessage(message(13, 50));
      store.putEntry(entry(2, 0, 3, m13, 1, { transient: true }));
      await store.flush();
      // consumed later: one of m12's three entries
      store.deleteEntry(2, 0, 2, m12, 3);
      await store.flush();

      if (f.reopen) store = await f.reopen();
      const info = await store.recover();
      expect(info.queues).toEqual([
        {
          queueId: 1,
          count: 3,
          bytes: 100 + 7 + 1000,
          lastSeq: 3,
          levels: [
            { priority: 3, count: 1, bytes: 7, firstSeq: 2, lastSeq: 2 },
            { priority: 0, count: 2, bytes: 1100, firstSeq: 1, lastSeq: 3 },
          ],
        },
        {
          queueId: 2,
          count: 2,
          bytes: 100 + 1000,
          lastSeq: 2 ** 33,
          levels: [
            { priority: 9, count: 1, bytes: 1000, firstSeq: 2 ** 33, lastSeq: 2 ** 33 },
            { priority: 0, count: 1, bytes: 100, firstSeq: 1, lastSeq: 1 },
          ],
        },
        { queueId: 41, count: 0, bytes: 0, lastSeq: 0, levels: [] },
      ]);
      // the transient entry was dropped with its message
      expect((await store.readEntries(2, null, 10)).map(pos)).toEqual([`9/${2 ** 33}`, '0/1']);
      const again = await store.recover();
      expect(again.queues[1]).toMatchObject({ queueId: 2, count: 2, bytes: 1100, lastSeq: 2 ** 33 });
      // the shared counts came back: m10 and m12 go with their last entry, not before
      store.deleteEntry(1, 0, 1, m10, 2);
      store.deleteEntry(1, 0, 3, m12, 3);
      await store.flush();
      expect((await store.readEntries(2, null, 10)).map((e) => e.messageId)).toEqual([m12, m10]);
      store.deleteEntry(2, 0, 1, m10, 2);
      store.deleteEntry(2, 9, 2 ** 33, m12, 3);
      for (const id of [m10, m12, m13]) expect(await bodyExists(store, id), `message ${id}`).toBe(false);
      expect(await bodyExists(store, m11)).toBe(true);
    });

    it('recover() on an empty store', async () => {
      const f = await make();
      const info = await f.store.recover();
      expect(info).toEqual({ queues: [] });
    });

    it('flush() resolves once everything queued is durable; message bodies are stored once', async () => {
      const f = await make();
      const store = f.store;
      const id = store.putMessage(message(5, 3000));
      for (let q = 1; q <= 3; q++) store.putEntry(entry(q, 0, 1, id, 3));
      await store.flush();
      for (let q = 1; q <= 3; q++) {
        const [e] = await store.readEntries(q, null, 1);
        expect(e!.message).toEqual(message(5, 3000));
        expect(e!.refs).toBe(3);
      }
      // the body stays until its last entry goes
      store.deleteEntry(1, 0, 1, id, 3);
      store.deleteEntry(2, 0, 1, id, 3);
      await store.flush();
      expect((await store.readEntries(3, null, 1)).map((e) => e.message.body.length)).toEqual([3000]);
      store.deleteEntry(3, 0, 1, id, 3);
      expect(await bodyExists(store, id)).toBe(false);
    });
  });
}
