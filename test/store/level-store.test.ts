import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Level } from 'level';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { FORMAT_KEY, FORMAT_VERSION, kindRange, messageIdOfKey, messageKey, Prefix, queueIdOfIndexKey } from '../../src/store/keys.js';
import { LevelStore } from '../../src/store/level-store.js';
import { DELETION_CHUNK } from '../../src/store/background-deletion.js';
import { usesNativeBatch } from '../../src/store/native-batch.js';
import { StoreError } from '../../src/store/store-error.js';
import type { CommitListener, Store } from '../../src/store/store.js';
import { entry, message, runStoreContract, type StoreFixture } from './store-contract.js';

const silent = createLogger('silent');

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'warren-store-'));
}

async function levelFixture(): Promise<StoreFixture> {
  const dir = await tempDir();
  let current = new LevelStore(dir, silent);
  await current.open();
  return {
    store: current,
    reopen: async () => {
      await current.close();
      current = new LevelStore(dir, silent);
      await current.open();
      return current;
    },
    cleanup: async () => {
      await current.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

runStoreContract('level', levelFixture);

type BatchOps = { type: string; key: Buffer }[];

describe('LevelStore', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function openStore(dir?: string, logger = silent): Promise<{ store: LevelStore; dir: string }> {
    const d = dir ?? (await tempDir());
    const store = new LevelStore(d, logger);
    await store.open();
    cleanups.push(async () => {
      await store.close().catch(() => undefined);
      if (dir === undefined) await rm(d, { recursive: true, force: true });
    });
    return { store, dir: d };
  }

  /** What a closed store's directory holds: the queue id of every index entry, the id of every body. */
  async function onDisk(dir: string): Promise<{ entryQueues: number[]; bodies: number[] }> {
    const raw = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await raw.open();
    try {
      const entryQueues = (await raw.keys(kindRange(Prefix.Index)).all()).map((k) => queueIdOfIndexKey(k));
      const bodies = (await raw.keys(kindRange(Prefix.Message)).all()).map((k) => messageIdOfKey(k));
      return { entryQueues, bodies };
    } finally {
      await raw.close();
    }
  }

  function spyBatch() {
    // every group commit goes through LevelStore#writeOps (ops, options, db)
    return vi.spyOn(LevelStore.prototype as unknown as { writeOps: (ops: BatchOps, opts: object) => Promise<void> }, 'writeOps');
  }

  it('reopening after close keeps topology, messages and entries', async () => {
    const { store, dir } = await openStore();
    store.putVhost('/');
    store.putQueue({ vhost: '/', name: 'q', id: 1, autoDelete: false, arguments: new Map() });
    const id = store.putMessage(message(1, 5000));
    store.putEntry(entry(1, 4, 1, id, 1, { redelivered: true }));
    await store.close();
    const { store: again } = await openStore(dir);
    expect((await again.loadTopology()).queues.map((q) => q.name)).toEqual(['q']);
    const [e] = await again.readEntries(1, null, 10);
    expect(e).toEqual({ ...entry(1, 4, 1, id, 1, { redelivered: true }), message: message(1, 5000) });
  });

  it('a put and a delete of the same message/entry in one open batch never reach the disk', async () => {
    const { store } = await openStore();
    const batch = spyBatch();
    const m1 = store.putMessage(message(1));
    store.putEntry(entry(1, 0, 1, m1));
    const m2 = store.putMessage(message(2));
    store.putEntry(entry(1, 0, 2, m2));
    expect(store.deleteEntry(1, 0, 1, m1, 1)).toBe(true);
    await store.flush();
    expect(batch).toHaveBeenCalledTimes(1);
    const ops = batch.mock.calls[0]![0];
    expect(ops.map((o) => o.type)).toEqual(['put', 'put']);
    expect(ops.some((o) => o.key.equals(messageKey(m1)))).toBe(false);
    expect(batch.mock.calls[0]![1]).toMatchObject({ sync: true });

    // published and consumed entirely within one window: nothing at all is written
    const m3 = store.putMessage(message(3));
    store.putEntry(entry(1, 0, 3, m3));
    expect(store.deleteEntry(1, 0, 3, m3, 1)).toBe(true);
    await store.flush();
    expect(batch).toHaveBeenCalledTimes(1);
  });

  it('operations that cancel out stop counting at once: a window that writes nothing leaves no write-behind and no bytes for the disk alarm', async () => {
    const d = await tempDir();
    const store = new LevelStore(d, silent, { writeBehind: { durableHigh: 64 * 1024, durableLow: 32 * 1024, spillHigh: 1 << 30, spillLow: 1 << 29 } });
    await store.open();
    cleanups.push(async () => {
      await store.close().catch(() => undefined);
      await rm(d, { recursive: true, force: true });
    });
    const batch = spyBatch();
    // 16 messages of 16 KiB published and consumed in one window: 256 KiB past the high mark, then all of it cancelled
    const ids: number[] = [];
    for (let n = 1; n <= 16; n++) {
      ids.push(store.putMessage(message(n, 16 * 1024)));
      store.putEntry(entry(1, 0, n, ids[n - 1]!));
    }
    expect(store.writeBehind.saturated).toBe(true);
    for (let n = 1; n <= 16; n++) expect(store.deleteEntry(1, 0, n, ids[n - 1]!, 1)).toBe(true);
    // not held until some later write happens to come: nothing is left to write
    expect(store.writeBehind.saturated).toBe(false);
    expect(store.writeBehind.durableBytes).toBe(0);
    expect(store.writeMeter.pending).toBe(0);
    await store.flush();
    expect(batch).not.toHaveBeenCalled();

    // a key set twice in one window counts once
    store.putVhost('v');
    store.putVhost('v');
    await store.flush();
    expect(store.writeMeter.pending).toBe(0);
  });

  it('many small operations hold writers as many bytes do: the write-behind bounds operations too, and lifts once they are written', async () => {
    const d = await tempDir();
    const store = new LevelStore(d, silent, {
      writeBehind: { durableHigh: 1 << 30, durableLow: 1 << 29, durableOpsHigh: 100, durableOpsLow: 50, spillHigh: 1 << 30, spillLow: 1 << 29 },
    });
    await store.open();
    cleanups.push(async () => {
      await store.close().catch(() => undefined);
      await rm(d, { recursive: true, force: true });
    });
    // 50 small messages: a body and an index entry each, 100 operations, a few KiB
    for (let n = 1; n <= 50; n++) store.putEntry(entry(1, 0, n, store.putMessage(message(n))));
    expect(store.writeBehind.saturated).toBe(false);
    store.putEntry(entry(1, 0, 51, store.putMessage(message(51))));
    expect(store.writeBehind.saturated).toBe(true);
    expect(store.writeBehind.durableBytes).toBeLessThan(64 * 1024);
    const relieved = new Promise<void>((resolve) => store.writeBehind.waitForRelief({ flowRelieved: resolve }));
    await relieved;
    expect(store.writeBehind.saturated).toBe(false);
    await store.flush();
    expect((await store.readEntries(1, null, 100)).length).toBe(51);
  });

  it('a delete of a key whose put is in flight is written as a delete in the next batch', async () => {
    const { store, dir } = await openStore();
    const real = (LevelStore.prototype as unknown as { writeOps: (...args: unknown[]) => Promise<void> }).writeOps;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const inFlight = new Promise<void>((r) => (started = r));
    const batch = spyBatch().mockImplementationOnce(async function (this: unknown, ...args: unknown[]) {
      started();
      await gate;
      return real.apply(this, args);
    });
    const m1 = store.putMessage(message(1));
    store.putEntry(entry(1, 0, 1, m1));
    const firstDone = store.flush();
    await inFlight;
    // the first batch is being written; these go to the next one
    expect(store.deleteEntry(1, 0, 1, m1, 1)).toBe(false);
    store.putEntry(entry(1, 0, 2, store.putMessage(message(2))));
    const secondDone = store.flush();
    release();
    await firstDone;
    await secondDone;
    expect(batch).toHaveBeenCalledTimes(2);
    const second = batch.mock.calls[1]![0];
    expect(second.map((o) => o.type).sort()).toEqual(['del', 'del', 'put', 'put']);
    await store.close();
    const { store: again } = await openStore(dir);
    expect((await again.readEntries(1, null, 10)).map((e) => e.seq)).toEqual([2]);
    await again.recover();
    expect(again.putMessage(message(3))).toBe(3);
  });

  it('operations arriving during a commit are grouped into the next batch', async () => {
    const { store } = await openStore();
    const batch = spyBatch();
    store.putMessage(message(1));
    const first = store.flush();
    await new Promise<void>((r) => setImmediate(r)); // the commit has started
    for (let i = 2; i <= 50; i++) store.putMessage(message(i));
    await first;
    await store.flush();
    // then one operation more: no one waited for the 49 when their write started, so the
    // flush that came meanwhile syncs with a write of the format record (DurableLog syncOnly)
    expect(batch.mock.calls.map((c) => c[0].length)).toEqual([1, 49, 1]);
    expect(batch.mock.calls.map((c) => (c[1] as { sync: boolean }).sync)).toEqual([true, false, true]);
  });

  it('isCommitted: a batch counts once written; the open batch with nothing in it counts once everything before it is written', async () => {
    const { store } = await openStore();
    // nothing queued yet: a reader waiting for the open batch must not wait for a write that never comes
    expect(store.isCommitted(store.openBatchId)).toBe(true);
    store.putMessage(message(1));
    const holding = store.openBatchId;
    expect(store.isCommitted(holding)).toBe(false);
    const done = store.flush();
    await new Promise<void>((r) => setImmediate(r)); // the commit has started: its batch is in flight
    const next = store.openBatchId;
    expect(next).toBeGreaterThan(holding);
    expect(store.isCommitted(holding)).toBe(false);
    expect(store.isCommitted(next)).toBe(false); // empty, but what came before is not written yet
    await done;
    expect(store.isCommitted(holding)).toBe(true);
    expect(store.isCommitted(store.openBatchId)).toBe(true);
  });

  it('afterCommit listeners run only after the batch write resolved', async () => {
    const { store } = await openStore();
    const events: string[] = [];
    const real = (LevelStore.prototype as unknown as { writeOps: (...args: unknown[]) => Promise<void> }).writeOps;
    spyBatch().mockImplementation(async function (this: unknown, ...args: unknown[]) {
      events.push('write started');
      await real.apply(this, args);
      events.push('write done');
    });
    store.putMessage(message(1));
    await new Promise<void>((resolve) =>
      store.afterCommit({
        batchCommitted: (e) => {
          events.push(`listener ${String(e)}`);
          resolve();
        },
      }),
    );
    expect(events).toEqual(['write started', 'write done', 'listener null']);
  });

  it('refuses a store of another format version, without touching it', async () => {
    const { store, dir } = await openStore();
    store.putVhost('/');
    await store.close();
    const raw = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    const newer = Buffer.alloc(4);
    newer.writeUInt32BE(FORMAT_VERSION + 1, 0);
    await raw.put(FORMAT_KEY, newer);
    await raw.close();
    const other = new LevelStore(dir, silent);
    await expect(other.open()).rejects.toThrow(StoreError);
    await expect(other.open()).rejects.toThrow(new RegExp(`format ${FORMAT_VERSION + 1}.*format ${FORMAT_VERSION}`));
    // unchanged: a corrected version opens with the data intact
    const raw2 = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    expect(await raw2.get(FORMAT_KEY)).toEqual(newer);
    const current = Buffer.alloc(4);
    current.writeUInt32BE(FORMAT_VERSION, 0);
    await raw2.put(FORMAT_KEY, current);
    await raw2.close();
    const { store: fixed } = await openStore(dir);
    expect((await fixed.loadTopology()).vhosts).toEqual(['/']);
  });

  it('refuses a non-empty directory that is not a Warren store, and a foreign LevelDB', async () => {
    const dir = await tempDir();
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'notes.txt'), 'hello');
    await expect(new LevelStore(dir, silent).open()).rejects.toThrow(/not empty and is not a Warren store/);

    const foreign = await tempDir();
    cleanups.push(() => rm(foreign, { recursive: true, force: true }));
    const raw = new Level(foreign);
    await raw.put('some', 'data');
    await raw.close();
    await expect(new LevelStore(foreign, silent).open()).rejects.toThrow(/not a Warren store/);
  });

  it('refuses a data directory in use by another Warren process', async () => {
    const { dir } = await openStore();
    const second = new LevelStore(dir, silent);
    const err = await second.open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toBe(`data directory ${dir} is in use by another Warren process`);
  });

  it('a write error reaches the listeners, is logged once, and the operations are retried', async () => {
    const lines: string[] = [];
    const logger = createLogger(
      'warn',
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(chunk.toString());
          cb();
        },
      }),
    );
    const { store, dir } = await openStore(undefined, logger);
    let failures = 0;
    let thirdFailure!: () => void;
    const threeFailed = new Promise<void>((r) => (thirdFailure = r));
    const real = (LevelStore.prototype as unknown as { writeOps: (...args: unknown[]) => Promise<void> }).writeOps;
    const batch = spyBatch().mockImplementation(async function (this: unknown, ...args: unknown[]) {
      if (failures < 3) {
        failures++;
        if (failures === 3) thirdFailure();
        throw Object.assign(new Error('IO error: No space left on device'), { code: 'LEVEL_IO_ERROR' });
      }
      return real.apply(this, args);
    });

    const errors: (Error | null)[] = [];
    const listener: CommitListener = { batchCommitted: (e) => errors.push(e) };
    store.putEntry(entry(1, 0, 1, store.putMessage(message(1))));
    const flushed = store.flush();
    store.afterCommit(listener);
    await expect(flushed).rejects.toThrow(/No space left/);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/No space left/);

    // the store keeps accepting operations; the failed ones are retried with them
    store.putEntry(entry(1, 0, 2, store.putMessage(message(2))));
    await threeFailed;
    await store.flush();
    expect(batch.mock.calls.length).toBeGreaterThanOrEqual(4);
    const errorLines = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50);
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]!.msg).toMatch(/write failed/);
    expect(JSON.stringify(errorLines[0])).toMatch(/No space left/);

    await store.close();
    const { store: again } = await openStore(dir);
    expect((await again.readEntries(1, null, 10)).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('recovery scans a large index in one pass (nextv batches)', async () => {
    const { store } = await openStore();
    store.putQueue({ vhost: '/', name: 'big', id: 3, autoDelete: false, arguments: new Map() });
    const n = 20000;
    for (let i = 1; i <= n; i++) store.putEntry(entry(3, i % 3, i, store.putMessage(message(i, 16))));
    await store.flush();
    const info = await store.recover();
    expect(info.queues).toMatchObject([{ queueId: 3, count: n, bytes: 16 * n, lastSeq: n }]);
    const levels = info.queues[0]!.levels;
    expect(levels.map((l) => l.priority)).toEqual([2, 1, 0]);
    expect(levels.reduce((a, l) => a + l.count, 0)).toBe(n);
    for (const l of levels) {
      expect(l.bytes).toBe(16 * l.count);
      expect([l.firstSeq % 3, l.lastSeq % 3]).toEqual([l.priority, l.priority]);
    }
  });

  it('recovery finishes an interrupted queue delete (index entries left without their record)', async () => {
    const { store, dir } = await openStore();
    store.putQueue({ vhost: '/', name: 'kept', id: 1, autoDelete: false, arguments: new Map() });
    store.putEntry(entry(1, 0, 1, store.putMessage(message(1))));
    store.putEntry(entry(2, 0, 1, store.putMessage(message(2)))); // queue 2 has no record
    await store.close();
    const { store: again } = await openStore(dir);
    const info = await again.recover();
    expect(info.queues.map((q) => q.queueId)).toEqual([1]);
    expect(again.allocateQueueId()).toBe(3); // never reuse an id seen in the index
    expect(again.pendingDeletions).toBe(1);
    await again.deletionsDone();
    expect(await again.readEntries(2, null, 10)).toEqual([]);
  });

  it('deleteQueue frees the bodies only that queue held, and keeps shared ones', async () => {
    const { store, dir } = await openStore();
    store.putQueue({ vhost: '/', name: 'gone', id: 1, autoDelete: false, arguments: new Map() });
    const m1 = store.putMessage(message(1)); // only in queue 1
    store.putEntry(entry(1, 0, 1, m1));
    const m2 = store.putMessage(message(2)); // shared with queue 2
    store.putEntry(entry(1, 0, 2, m2, 2));
    store.putEntry(entry(2, 0, 1, m2, 2));
    await store.flush();
    store.deleteQueue('/', 'gone', 1);
    await store.deletionsDone();
    await store.flush();
    await store.close();
    const raw = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await raw.open();
    try {
      expect(await raw.get(messageKey(m1))).toBeUndefined();
      expect(await raw.get(messageKey(m2))).toBeDefined();
    } finally {
      await raw.close();
    }
  });

  it('a deletion stopped between a window\'s bodies and its keys is finished by the next open, shared bodies kept', async () => {
    const dir = await tempDir();
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const first = new LevelStore(dir, silent);
    await first.open();
    first.putQueue({ vhost: '/', name: 'gone', id: 1, autoDelete: false, arguments: new Map() });
    first.putQueue({ vhost: '/', name: 'kept', id: 2, autoDelete: false, arguments: new Map() });
    const n = 1000;
    const shared = first.putMessage(message(0, 16)); // in both queues
    first.putEntry(entry(1, 0, 1, shared, 2));
    first.putEntry(entry(2, 0, 1, shared, 2));
    for (let i = 2; i <= n; i++) first.putEntry(entry(1, 0, i, first.putMessage(message(i, 16))));
    await first.flush();
    // the range delete of the index keys fails: the first window's bodies are gone, its keys not
    const clear = vi.spyOn(LevelStore.prototype as unknown as { clearRange: () => Promise<void> }, 'clearRange').mockRejectedValue(new Error('disk says no'));
    first.deleteQueue('/', 'gone', 1);
    await vi.waitFor(() => expect(clear).toHaveBeenCalled());
    await first.close();
    clear.mockRestore();

    const { store } = await openStore(dir);
    expect((await store.recover()).queues.map((q) => q.queueId)).toEqual([2]);
    expect(store.pendingDeletions).toBe(1);
    await store.deletionsDone();
    await store.flush();
    await store.close();
    expect(await onDisk(dir)).toEqual({ entryQueues: [2], bodies: [shared] });
  });

  it('a deleted queue\'s entries go in the background, in chunks, never in one long write', async () => {
    const { store, dir } = await openStore();
    store.putQueue({ vhost: '/', name: 'big', id: 1, autoDelete: false, arguments: new Map() });
    store.putQueue({ vhost: '/', name: 'kept', id: 2, autoDelete: false, arguments: new Map() });
    const n = 5000;
    // two priority levels, and seqs with gaps (acked messages), as a real queue has
    for (let i = 1; i <= n; i++) store.putEntry(entry(1, i % 3 === 0 ? 5 : 0, i * 3, store.putMessage(message(i, 16))));
    const keptId = store.putMessage(message(n + 1, 16));
    store.putEntry(entry(2, 0, 1, keptId));
    await store.flush();
    const batch = spyBatch();
    store.deleteQueue('/', 'big', 1);
    expect(store.pendingDeletions).toBe(1);
    await store.deletionsDone();
    await store.flush();
    expect(store.pendingDeletions).toBe(0);
    const sizes = batch.mock.calls.map((c) => c[0].length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2 * DELETION_CHUNK + 1);
    expect(await store.readEntries(1, null, 10)).toEqual([]);
    await store.close();
    // on disk: no entry of queue 1 and none of its bodies; queue 2 untouched
    expect(await onDisk(dir)).toEqual({ entryQueues: [2], bodies: [keptId] });
  });

  it('each write batch\'s native memory is released when its write completes (classic-level\'s batch_do)', async () => {
    const { dir } = await openStore();
    const raw = new Level<Buffer, Buffer>(dir + '-raw', { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await raw.open();
    cleanups.push(async () => {
      await raw.close();
      await rm(dir + '-raw', { recursive: true, force: true });
    });
    expect(usesNativeBatch(raw)).toBe(true);
  });

  it('openOn adopts a LevelDB handle this process holds open: what it holds is recovered, writes go through it, and close closes it', async () => {
    const { store, dir } = await openStore();
    store.putVhost('/');
    store.putQueue({ vhost: '/', name: 'q', id: 1, autoDelete: false, arguments: new Map() });
    const id = store.putMessage(message(1, 2000));
    store.putEntry(entry(1, 0, 1, id));
    await store.close();
    // a follower's handle: opened with the store's options, written directly (as replication applies)
    const held = await LevelStore.openLevel(dir);
    const later = new LevelStore(dir + '-scratch', silent);
    expect(held.status).toBe('open');
    const adopted = new LevelStore(dir, silent);
    await adopted.openOn(held);
    cleanups.push(async () => {
      await adopted.close().catch(() => undefined);
      await rm(dir + '-scratch', { recursive: true, force: true });
    });
    expect(adopted.levelDb()).toBe(held);
    const info = await adopted.recover();
    expect(info.queues.map((q) => [q.queueId, q.count])).toEqual([[1, 1]]);
    expect((await adopted.readEntries(1, null, 10)).map((e) => e.message)).toEqual([message(1, 2000)]);
    const id2 = adopted.putMessage(message(2, 10));
    adopted.putEntry(entry(1, 0, 2, id2));
    await adopted.flush();
    expect(await held.get(messageKey(id2))).toBeDefined();
    // only one store may hold it, only while it is open, and only the store of its own directory
    await expect(adopted.openOn(held)).rejects.toThrow(StoreError);
    await expect(later.openOn(held)).rejects.toThrow(/needs a handle on/);
    expect(held.status).toBe('open');
    await adopted.close();
    expect(held.status).toBe('closed');
    await expect(new LevelStore(dir, silent).openOn(held)).rejects.toThrow(StoreError);
    // a clean close: the next ordinary start checks and finds both messages
    const { store: again } = await openStore(dir);
    expect((await again.recover()).queues.map((q) => [q.queueId, q.count])).toEqual([[1, 2]]);
  });

  it('uses the Store interface', () => {
    const s: Store = new LevelStore('/nonexistent', silent);
    expect(typeof s.openBatchId).toBe('number');
  });
});
