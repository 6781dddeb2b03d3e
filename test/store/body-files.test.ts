import { mkdtemp, open, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { BODIES_DIR, BODY_FILE_THRESHOLD, isBodyPointer } from '../../src/store/body-files.js';
import { messageKey } from '../../src/store/keys.js';
import { LevelStore, type LevelStoreOptions } from '../../src/store/level-store.js';
import { entry, message, runStoreContract, type StoreFixture } from './store-contract.js';

const silent = createLogger('silent');
/** above the threshold: every message of these tests goes to a body file */
const BIG = BODY_FILE_THRESHOLD + 4096;
/** small files, so that a few messages fill one and the next goes to a new one */
const FILE_SIZE = 3 * (BIG + 200);

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'warren-bodies-'));
}

async function bodyFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(join(dir, BODIES_DIR))).filter((n) => n.endsWith('.seg')).sort();
  } catch {
    return [];
  }
}

runStoreContract(
  'level, big bodies in body files',
  async (): Promise<StoreFixture> => {
    const dir = await tempDir();
    const options: LevelStoreOptions = { bodyFileSize: FILE_SIZE };
    let current = new LevelStore(dir, silent, options);
    await current.open();
    return {
      store: current,
      reopen: async () => {
        await current.close();
        current = new LevelStore(dir, silent, options);
        await current.open();
        return current;
      },
      cleanup: async () => {
        await current.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  BIG,
);

describe('body files', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function openStore(dir: string, options: LevelStoreOptions = { bodyFileSize: FILE_SIZE }): Promise<LevelStore> {
    const store = new LevelStore(dir, silent, options);
    await store.open();
    await store.recover();
    cleanups.push(() => store.close().catch(() => undefined));
    return store;
  }

  async function freshDir(): Promise<string> {
    const dir = await tempDir();
    cleanups.unshift(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  /** puts `n` messages of `size` bytes in queue 1 (seqs 1..n), waits for their commit; returns their ids */
  async function putMessages(store: LevelStore, n: number, size = BIG, from = 1): Promise<number[]> {
    // the queue's record: entries without one are a deleted queue's, gone at the next start
    store.putQueue({ vhost: '/', name: 'q', id: 1, autoDelete: false, arguments: new Map() });
    const ids: number[] = [];
    for (let s = from; s < from + n; s++) {
      const id = store.putMessage(message(s, size));
      store.putEntry(entry(1, 0, s, id));
      ids.push(id);
    }
    await store.flush();
    return ids;
  }

  it('keeps a big value in a body file and a pointer under its key; small ones stay in LevelDB', async () => {
    const dir = await freshDir();
    const store = await openStore(dir);
    const [big] = await putMessages(store, 1);
    const [small] = await putMessages(store, 1, 100, 2);
    expect(isBodyPointer((await store.levelDb().get(messageKey(big!)))!)).toBe(true);
    expect(isBodyPointer((await store.levelDb().get(messageKey(small!)))!)).toBe(false);
    expect(await bodyFiles(dir)).toHaveLength(1);
    const read = await store.readEntries(1, null, 10);
    expect(read.map((e) => e.message)).toEqual([message(1, BIG), message(2, 100)]);
  });

  it('syncs a body only for a message someone waits for (confirms, a transaction), and every file at a clean close', async () => {
    const dir = await freshDir();
    const store = await openStore(dir);
    // every FileHandle's datasync (the class is not exported: taken from a handle)
    const handle = await open(join(dir, 'handle'), 'w');
    await handle.close();
    await unlink(join(dir, 'handle'));
    const proto = Object.getPrototypeOf(handle) as { datasync(): Promise<void> };
    const datasync = vi.spyOn(proto, 'datasync');
    try {
      store.putQueue({ vhost: '/', name: 'q', id: 1, autoDelete: false, arguments: new Map() });
      // a flood without confirms, over several files: written, never synced
      for (let s = 1; s <= 7; s++) store.putEntry(entry(1, 0, s, store.putMessage({ ...message(s, BIG), unconfirmed: true })));
      await store.flush();
      expect((await bodyFiles(dir)).length).toBeGreaterThanOrEqual(3);
      expect(datasync).not.toHaveBeenCalled();
      // a confirmed one: its file is synced before its batch counts as written
      store.putEntry(entry(1, 0, 8, store.putMessage(message(8, BIG))));
      await store.flush();
      expect(datasync).toHaveBeenCalled();
      datasync.mockClear();
      // more without confirms, then a clean close: the files they are in are synced
      for (let s = 9; s <= 12; s++) store.putEntry(entry(1, 0, s, store.putMessage({ ...message(s, BIG), unconfirmed: true })));
      await store.flush();
      expect(datasync).not.toHaveBeenCalled();
      await store.close();
      expect(datasync.mock.calls.length).toBeGreaterThanOrEqual(2);
    } finally {
      datasync.mockRestore();
    }
    const reopened = await openStore(dir);
    const read = await reopened.readEntries(1, null, 100);
    expect(read.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    for (const e of read) expect(e.message.body).toEqual(message(e.seq, BIG).body);
  });

  it('gives the space of emptied files back when no write is ever waited for (no confirms at all)', async () => {
    const dir = await freshDir();
    const store = await openStore(dir);
    store.putQueue({ vhost: '/', name: 'q', id: 1, autoDelete: false, arguments: new Map() });
    const ids: number[] = [];
    for (let s = 1; s <= 7; s++) {
      const id = store.putMessage({ ...message(s, BIG), unconfirmed: true });
      store.putEntry(entry(1, 0, s, id));
      ids.push(id);
    }
    // nothing here waits for a commit (flush would): the files appear as the batch is written
    await vi.waitFor(async () => expect((await bodyFiles(dir)).length).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
    const before = await bodyFiles(dir);
    for (let s = 1; s <= 7; s++) store.deleteEntry(1, 0, s, ids[s - 1]!, 1);
    // the acks go unsynced; the files they emptied go once a synced write follows, which the store asks for
    await vi.waitFor(async () => expect((await bodyFiles(dir)).length).toBeLessThanOrEqual(1), { timeout: 10_000 });
    expect(before.length).toBeGreaterThan(1);
  });

  it('fills files one after another and reads across them after a restart', async () => {
    const dir = await freshDir();
    let store = await openStore(dir);
    await putMessages(store, 10);
    expect((await bodyFiles(dir)).length).toBeGreaterThanOrEqual(3);
    await store.close();
    store = await openStore(dir);
    const read = await store.readEntries(1, null, 100);
    expect(read.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const e of read) expect(e.message).toEqual(message(e.seq, BIG));
  });

  it('removes a file once every message in it is deleted, and never one that still holds a message', async () => {
    const dir = await freshDir();
    let store = await openStore(dir);
    const ids = await putMessages(store, 9);
    const before = await bodyFiles(dir);
    expect(before.length).toBeGreaterThanOrEqual(3);
    // all but the last message are acked
    for (let s = 1; s <= 8; s++) store.deleteEntry(1, 0, s, ids[s - 1]!, 1);
    await store.flush();
    await store.close();
    const after = await bodyFiles(dir);
    expect(after.length).toBeLessThan(before.length);
    // the last message's file is still there, and the message reads back
    store = await openStore(dir);
    const read = await store.readEntries(1, null, 100);
    expect(read.map((e) => e.seq)).toEqual([9]);
    expect(read[0]!.message).toEqual(message(9, BIG));
    // once it goes too, a restart leaves no file behind
    store.deleteEntry(1, 0, 9, ids[8]!, 1);
    await store.flush();
    await store.close();
    store = await openStore(dir);
    await store.close();
    expect(await bodyFiles(dir)).toEqual([]);
  });

  it('keeps files while a snapshot holds them (a cluster leader feeding a follower)', async () => {
    const dir = await freshDir();
    let store = await openStore(dir);
    const ids = await putMessages(store, 6);
    const files = await bodyFiles(dir);
    const release = store.holdStoredValues();
    for (let s = 1; s <= 6; s++) store.deleteEntry(1, 0, s, ids[s - 1]!, 1);
    await store.flush();
    await putMessages(store, 1, 100, 7); // a later synced write: the deletes are durable
    expect(await bodyFiles(dir)).toEqual(expect.arrayContaining(files.slice(0, -1)));
    release();
    await store.close();
    expect((await bodyFiles(dir)).filter((f) => files.slice(0, -1).includes(f))).toEqual([]);
  });

  it('a snapshot reads whole values back in place of pointers', async () => {
    const dir = await freshDir();
    const store = await openStore(dir);
    const [id] = await putMessages(store, 1);
    const key = messageKey(id!);
    const rows = await store.resolveStoredValues([[key, (await store.levelDb().get(key))!]]);
    expect(isBodyPointer(rows[0]![1])).toBe(false);
    expect(rows[0]![1].length).toBeGreaterThan(BIG);
  });

  it('moves a message whose body was damaged on disk to quarantine and serves the others', async () => {
    const dir = await freshDir();
    let store = await openStore(dir, {});
    await putMessages(store, 3);
    await store.close();
    const [file] = await bodyFiles(dir);
    // a byte in the middle of the second record's body
    const h = await open(join(dir, BODIES_DIR, file!), 'r+');
    const at = Math.floor(1.5 * (BIG + 100));
    const b = Buffer.alloc(1);
    await h.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    await h.write(b, 0, 1, at);
    await h.close();
    store = await openStore(dir, {});
    const read = await store.readEntries(1, null, 10);
    expect(read.map((e) => e.seq)).toEqual([1, 3]);
    expect(store.quarantinedMessages).toBe(1);
    expect((await readdir(dir)).includes('quarantine')).toBe(true);
  });

  it('moves messages whose body file is missing to quarantine, without failing the start', async () => {
    const dir = await freshDir();
    let store = await openStore(dir, {});
    await putMessages(store, 2);
    await store.close();
    for (const f of await bodyFiles(dir)) await unlink(join(dir, BODIES_DIR, f));
    store = await openStore(dir, {});
    expect(await store.readEntries(1, null, 10)).toEqual([]);
    expect(store.quarantinedMessages).toBe(2);
  });

  it('with body files off (a cluster leader), big values stay in LevelDB, and values already in files are still read', async () => {
    const dir = await freshDir();
    let store = await openStore(dir);
    await putMessages(store, 1);
    await store.close();
    store = await openStore(dir, { bodyFiles: false });
    const [id] = await putMessages(store, 1, BIG, 2);
    expect(isBodyPointer((await store.levelDb().get(messageKey(id!)))!)).toBe(false);
    expect((await store.readEntries(1, null, 10)).map((e) => e.message)).toEqual([message(1, BIG), message(2, BIG)]);
  });
});

describe('body-file compaction', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** a data dir and how to open a store on it (compaction as soon as a file is sparse, unless told) */
  async function setUp(compactAfterMs = 0): Promise<{ dir: string; open: () => Promise<LevelStore> }> {
    const dir = await tempDir();
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const openIt = async (): Promise<LevelStore> => {
      const store = new LevelStore(dir, silent, { bodyFileSize: FILE_SIZE, bodyCompactAfterMs: compactAfterMs });
      await store.open();
      await store.recover();
      cleanups.push(() => store.close().catch(() => undefined));
      return store;
    };
    return { dir, open: openIt };
  }

  /** 9 messages of BIG bytes in queue 1: three full files of three */
  async function nine(store: LevelStore): Promise<number[]> {
    store.putQueue({ vhost: '/', name: 'q', id: 1, autoDelete: false, arguments: new Map() });
    const ids: number[] = [];
    for (let s = 1; s <= 9; s++) {
      const id = store.putMessage(message(s, BIG));
      store.putEntry(entry(1, 0, s, id));
      ids.push(id);
    }
    await store.flush();
    return ids;
  }

  it('moves the last message out of a mostly deleted file, removes the file, and the message reads back after a restart', async () => {
    const { dir, open: openIt } = await setUp();
    let store = await openIt();
    const ids = await nine(store);
    const files = await bodyFiles(dir);
    expect(files).toHaveLength(3);
    // two of the first file's three messages acked: one third of it is live
    store.deleteEntry(1, 0, 1, ids[0]!, 1);
    store.deleteEntry(1, 0, 2, ids[1]!, 1);
    await store.flush();
    await store.compactionsDone();
    await store.close();
    const after = await bodyFiles(dir);
    expect(after).not.toContain(files[0]);
    expect(after).toContain(files[1]);
    store = await openIt();
    const read = await store.readEntries(1, null, 100);
    expect(read.map((e) => e.seq)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    for (const e of read) expect(e.message).toEqual(message(e.seq, BIG));
    expect(isBodyPointer((await store.levelDb().get(messageKey(ids[2]!)))!)).toBe(true);
  });

  it('a message deleted while its file is compacted stays deleted, and the file goes', async () => {
    const { dir, open: openIt } = await setUp();
    let store = await openIt();
    const ids = await nine(store);
    const files = await bodyFiles(dir);
    store.deleteEntry(1, 0, 1, ids[0]!, 1);
    store.deleteEntry(1, 0, 2, ids[1]!, 1);
    await store.flush(); // compaction of the first file starts with this write
    store.deleteEntry(1, 0, 3, ids[2]!, 1); // its last message goes while it runs
    await store.flush();
    await store.compactionsDone();
    await store.flush();
    await store.close();
    expect(await bodyFiles(dir)).not.toContain(files[0]);
    store = await openIt();
    expect(await store.levelDb().get(messageKey(ids[2]!))).toBeUndefined();
    expect((await store.readEntries(1, null, 100)).map((e) => e.seq)).toEqual([4, 5, 6, 7, 8, 9]);
  });

  it('a moved message stays where it was moved while newer traffic comes and goes', async () => {
    const { open: openIt } = await setUp();
    const store = await openIt();
    const ids = await nine(store);
    const fileOf = async (id: number): Promise<number> => (await store.levelDb().get(messageKey(id)))!.readUInt32BE(4);
    store.deleteEntry(1, 0, 1, ids[0]!, 1);
    store.deleteEntry(1, 0, 2, ids[1]!, 1);
    await store.flush();
    await store.compactionsDone();
    const moved = await fileOf(ids[2]!);
    // more traffic: six messages, all but one acked again, leaving files around them sparse
    for (let s = 10; s <= 15; s++) store.putEntry(entry(1, 0, s, store.putMessage(message(s, BIG))));
    await store.flush();
    const later = (await store.readEntries(1, { priority: 0, seq: 9 }, 100)).map((e) => e.messageId);
    for (let k = 0; k < 5; k++) store.deleteEntry(1, 0, 10 + k, later[k]!, 1);
    await store.flush();
    await store.compactionsDone();
    expect(await fileOf(ids[2]!)).toBe(moved);
    expect((await store.readEntries(1, null, 100)).map((e) => e.seq)).toEqual([3, 4, 5, 6, 7, 8, 9, 15]);
  });

  it('leaves alone a file whose messages are still being consumed (compaction waits until none was deleted for a while)', async () => {
    const { dir, open: openIt } = await setUp(60_000);
    let store = await openIt();
    const ids = await nine(store);
    const files = await bodyFiles(dir);
    store.deleteEntry(1, 0, 1, ids[0]!, 1);
    store.deleteEntry(1, 0, 2, ids[1]!, 1);
    await store.flush();
    // a later write (compaction is looked for after each one)
    store.putEntry(entry(1, 0, 100, store.putMessage(message(100, 10))));
    await store.flush();
    await store.compactionsDone();
    await store.close();
    expect(await bodyFiles(dir)).toContain(files[0]);
    store = await openIt();
    expect((await store.levelDb().get(messageKey(ids[2]!)))!.readUInt32BE(4)).toBe(Number(files[0]!.slice(0, 8)));
  });

  it('after a start without the bookkeeping a clean close saves (a crash), every message in a body file is found, moved ones included', async () => {
    const { dir, open: openIt } = await setUp();
    let store = await openIt();
    const ids = await nine(store);
    // the second file goes sparse first, then the first: the file of moved values gets 6, then 3
    store.deleteEntry(1, 0, 4, ids[3]!, 1);
    store.deleteEntry(1, 0, 5, ids[4]!, 1);
    await store.flush();
    await store.compactionsDone();
    store.deleteEntry(1, 0, 1, ids[0]!, 1);
    store.deleteEntry(1, 0, 2, ids[1]!, 1);
    await store.flush();
    await store.compactionsDone();
    await store.close();
    expect((await readdir(join(dir, BODIES_DIR))).includes('live.idx')).toBe(true);
    // as after a crash: nothing saved
    await unlink(join(dir, BODIES_DIR, 'live.idx'));
    store = await openIt();
    // 6 goes: its file must not go with it, 3 is in it too
    store.deleteEntry(1, 0, 6, ids[5]!, 1);
    await store.flush();
    await store.close();
    store = await openIt();
    const read = await store.readEntries(1, null, 100);
    expect(read.map((e) => e.seq)).toEqual([3, 7, 8, 9]);
    for (const e of read) expect(e.message).toEqual(message(e.seq, BIG));
    expect(store.quarantinedMessages).toBe(0);
  });

  it('a clean close saves the bookkeeping for the next start; one that does not check out is replaced by a scan', async () => {
    const { dir, open: openIt } = await setUp();
    let store = await openIt();
    const ids = await nine(store);
    await store.close();
    const saved = join(dir, BODIES_DIR, 'live.idx');
    const h = await open(saved, 'r+');
    await h.write(Buffer.from([0xff]), 0, 1, 9);
    await h.close();
    store = await openIt();
    // taken at the start: a crash from here on must not find it
    expect((await readdir(join(dir, BODIES_DIR))).includes('live.idx')).toBe(false);
    for (let s = 1; s <= 8; s++) store.deleteEntry(1, 0, s, ids[s - 1]!, 1);
    await store.flush();
    await store.close();
    store = await openIt();
    expect((await store.readEntries(1, null, 100)).map((e) => e.message)).toEqual([message(9, BIG)]);
  });
});
