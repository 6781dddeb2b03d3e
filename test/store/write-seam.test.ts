// The durable log's write seam (WriteInterceptor, LevelStore.interceptWrites): clustering
// replicates through it, so it must be handed every write of the store's data. A mirror
// LevelDB that applies only what the seam was handed must end equal to the store's own.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { DELETION_CHUNK } from '../../src/store/background-deletion.js';
import type { WriteInterceptor } from '../../src/store/durable-log.js';
import { FORMAT_KEY } from '../../src/store/keys.js';
import { LevelStore } from '../../src/store/level-store.js';
import { batchWriter, type BatchOp, type Db } from '../../src/store/native-batch.js';
import type { QueueRecord } from '../../src/store/store.js';
import { entry, message } from './store-contract.js';

const silent = createLogger('silent');

async function dump(db: Db): Promise<string[]> {
  return (await db.iterator().all()).map(([k, v]) => `${k.toString('hex')}=${v.toString('hex')}`);
}

function queue(name: string, id: number): QueueRecord {
  return { vhost: '/', name, id, autoDelete: false, arguments: new Map() };
}

describe('the durable log write seam', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  /** A store whose every write is also applied, through the seam only, to a mirror LevelDB. */
  async function mirrored(): Promise<{ dir: string; mirror: Db; batches: BatchOp[][]; seam: WriteInterceptor; open: () => Promise<LevelStore> }> {
    const root = await mkdtemp(join(tmpdir(), 'warren-seam-'));
    const dir = join(root, 'store');
    const mirror: Db = new Level<Buffer, Buffer>(join(root, 'mirror'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await mirror.open();
    const toMirror = batchWriter(mirror);
    const batches: BatchOp[][] = [];
    const seam: WriteInterceptor = {
      async write(ops, options, local) {
        batches.push([...ops]);
        await local(ops, options);
        await toMirror(ops, { sync: false });
      },
    };
    let current: LevelStore | null = null;
    cleanups.push(async () => {
      await current?.close().catch(() => {});
      await mirror.close();
      await rm(root, { recursive: true, force: true });
    });
    const open = async (): Promise<LevelStore> => {
      await current?.close();
      const store = new LevelStore(dir, silent);
      store.interceptWrites(seam);
      await store.open();
      current = store;
      return store;
    };
    return { dir, mirror, batches, seam, open };
  }

  it('is handed group commits, purge moves, every background deletion chunk and recovery clean-ups: a mirror fed by it ends equal', async () => {
    const { mirror, batches, open } = await mirrored();
    let store = await open();
    await store.recover();
    // the format record is written at open, on every node alike, not through the seam
    await mirror.put(FORMAT_KEY, (await store.levelDb().get(FORMAT_KEY))!);

    store.putVhost('/');
    const big = store.allocateQueueId();
    const purged = store.allocateQueueId();
    const paged = store.allocateQueueId();
    store.putQueue(queue('big', big));
    store.putQueue(queue('purged', purged));
    store.putQueue(queue('paged', paged));
    const bigCount = 2 * DELETION_CHUNK + 100;
    for (let seq = 1; seq <= bigCount; seq++) store.putEntry(entry(big, 0, seq, store.putMessage(message(seq))));
    // a message shared by two queues: its body goes with the last reference
    const shared = store.putMessage(message(9999));
    store.putEntry(entry(big, 0, bigCount + 1, shared, 2));
    store.putEntry(entry(purged, 0, 1, shared, 2));
    for (let seq = 2; seq <= 10; seq++) store.putEntry(entry(purged, 0, seq, store.putMessage(message(seq))));
    // a paged-out transient entry as format 3 and earlier wrote them: a restart drops it
    store.putEntry(entry(paged, 0, 1, store.putMessage(message(1)), 1, { transient: true }));
    await store.flush();

    // purge: the queue continues under a new id, its delivered entry (seq 3) moves there
    const delivered = entry(purged, 0, 3, 0);
    const before = (await store.readEntries(purged, { priority: 0, seq: 2 }, 1))[0]!;
    store.updateEntry({ ...delivered, messageId: before.messageId, redelivered: true });
    const newId = store.allocateQueueId();
    store.purgeQueue(queue('purged', newId), purged);
    const refs = store.moveEntry(purged, { ...delivered, queueId: newId, messageId: before.messageId, redelivered: true });
    // the big queue goes in the background, chunk by chunk
    store.deleteQueue('/', 'big', big);
    await store.flush();
    await store.deletionsDone();
    await store.flush();
    expect(await store.readEntries(big, null, 10)).toEqual([]);
    expect((await store.readEntries(newId, null, 10)).map((e) => e.seq)).toEqual([3]);

    // a restart: recovery drops the transient entry, through the seam too
    store = await open();
    const recovered = await store.recover();
    expect(recovered.queues.find((q) => q.queueId === paged)?.count).toBe(0);
    await store.deletionsDone();
    await store.flush();
    store.deleteEntry(newId, 0, 3, before.messageId, refs);
    await store.flush();

    // the chunks of the big delete each came as their own write
    const deletes = batches.map((ops) => ops.filter((op) => op.type === 'del').length);
    expect(deletes.filter((n) => n >= DELETION_CHUNK).length).toBeGreaterThanOrEqual(2);
    expect(await dump(mirror)).toEqual(await dump(store.levelDb()));
  });

  it('a failing interceptor fails the batch like a disk error: listeners hear it, the operations are kept and written once it succeeds', async () => {
    const root = await mkdtemp(join(tmpdir(), 'warren-seam-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const store = new LevelStore(root, silent);
    let fail = true;
    store.interceptWrites({ write: (ops, options, local) => (fail ? Promise.reject(new Error('not the leader')) : local(ops, options)) });
    await store.open();
    cleanups.push(() => store.close());
    await store.recover();
    const q = store.allocateQueueId();
    store.putQueue(queue('q', q));
    const id = store.putMessage(message(1));
    store.putEntry(entry(q, 0, 1, id));
    await expect(store.flush()).rejects.toThrow('not the leader');
    fail = false;
    await store.flush();
    expect((await store.readEntries(q, null, 10)).map((e) => e.seq)).toEqual([1]);
  });
});
