import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Level } from 'level';
import { LevelApplyTarget } from '../../src/cluster/apply-target.js';
import { encodeRecord, RECORD_HEADER, RecordFormatError } from '../../src/cluster/record.js';
import { REUSABLE_BATCH_BYTES, usesNativeBatch } from '../../src/store/native-batch.js';
import { encodeMessage, messageKey } from '../../src/store/keys.js';
import { LevelStore } from '../../src/store/level-store.js';
import type { MessageRecord } from '../../src/store/store.js';

const logger = pino({ level: 'silent' });
const msg = (n: number): MessageRecord => ({ exchange: '', routingKey: 'q', rawProperties: Buffer.from([0x10, 0x00, 0x02]), body: Buffer.alloc(16, n & 0xff) });
const put = (id: number) => ({ type: 'put' as const, key: messageKey(id), value: encodeMessage(msg(id)) });

describe('LevelApplyTarget on the leader\'s store', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('writes to the handle the store holds now: after the store reopened its LevelDB (a failed write), applies reach the new one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warren-apply-target-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const store = new LevelStore(dir, logger);
    await store.open();
    cleanup.push(() => store.close().catch(() => {}));
    const target = new LevelApplyTarget(store);
    await target.apply([put(1)]);
    const first = store.levelDb();

    // one write fails as a full disk does: the store reopens its LevelDB before the next one
    const writeOps = vi.spyOn(LevelStore.prototype as unknown as { writeOps: () => Promise<void> }, 'writeOps');
    writeOps.mockRejectedValueOnce(Object.assign(new Error('IO error: No space left on device'), { code: 'LEVEL_IO_ERROR' }));
    await expect(target.apply([put(2)])).rejects.toThrow(/No space left/);
    writeOps.mockRestore();

    await target.apply([put(2), put(3)]);
    expect(store.levelDb()).not.toBe(first);
    expect(first.status).toBe('closed');
    const got = await store.levelDb().getMany([1, 2, 3].map((id) => messageKey(id)));
    expect(got.map((v) => v !== undefined)).toEqual([true, true, true]);
    // and a snapshot for a follower's catch-up reads the new handle too
    const snap = target.snapshot();
    const rows: number[] = [];
    for await (const chunk of snap.entries(100)) rows.push(chunk.length);
    await snap.close();
    expect(rows.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);
  });
});

describe('LevelApplyTarget.applyRecords on a follower\'s handle', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function handle(): Promise<Level<Buffer, Buffer>> {
    const dir = await mkdtemp(join(tmpdir(), 'warren-apply-records-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    cleanup.push(() => db.close());
    return db;
  }
  const b = (s: string): Buffer => Buffer.from(s);
  const value = async (db: Level<Buffer, Buffer>, k: string): Promise<string | undefined> => (await db.get(b(k)))?.toString();

  it('writes the records\' puts and deletes in order, through the reused native batch, write after write', async () => {
    const db = await handle();
    const target = new LevelApplyTarget(db);
    expect(usesNativeBatch(db)).toBe(true);
    await target.applyRecords([
      encodeRecord(1, 1, [{ type: 'put', key: b('a'), value: b('1') }, { type: 'put', key: b('b'), value: b('1') }]),
      encodeRecord(1, 2, [{ type: 'del', key: b('a') }, { type: 'put', key: b('b'), value: b('2') }, { type: 'put', key: b('c'), value: b('2') }]),
    ]);
    expect([await value(db, 'a'), await value(db, 'b'), await value(db, 'c')]).toEqual([undefined, '2', '2']);
    // the batch was emptied by its write: the next write holds only its own ops
    await target.applyRecords([encodeRecord(1, 3, [{ type: 'put', key: b('a'), value: b('3') }])]);
    await db.del(b('b'));
    await target.applyRecords([encodeRecord(1, 4, [{ type: 'put', key: b('d'), value: b('4') }])]);
    expect([await value(db, 'a'), await value(db, 'b'), await value(db, 'd')]).toEqual(['3', undefined, '4']);
  });

  it('writes nothing of a group holding a malformed record, and the next group alone afterwards', async () => {
    const db = await handle();
    const target = new LevelApplyTarget(db);
    const good = encodeRecord(1, 1, [{ type: 'put', key: b('a'), value: b('1') }]);
    const bad = encodeRecord(1, 2, [{ type: 'put', key: b('x'), value: b('1') }]);
    bad[RECORD_HEADER] = 9; // unknown op type
    await expect(target.applyRecords([good, bad])).rejects.toThrow(RecordFormatError);
    expect(await value(db, 'a')).toBeUndefined();
    await target.applyRecords([encodeRecord(1, 3, [{ type: 'put', key: b('c'), value: b('3') }])]);
    expect([await value(db, 'a'), await value(db, 'c')]).toEqual([undefined, '3']);
  });

  it('writes a group larger than REUSABLE_BATCH_BYTES as one array of ops (the reused batch never grows past it)', async () => {
    const db = await handle();
    const target = new LevelApplyTarget(db);
    const big = Buffer.alloc(REUSABLE_BATCH_BYTES / 2 + 1, 7);
    const spy = vi.spyOn(target, 'apply');
    await target.applyRecords([encodeRecord(1, 1, [{ type: 'put', key: b('a'), value: big }]), encodeRecord(1, 2, [{ type: 'put', key: b('b'), value: big }])]);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.calls[0]![0].length).toBe(2);
    expect((await db.get(b('b')))?.length).toBe(big.length);
    await target.applyRecords([encodeRecord(1, 3, [{ type: 'put', key: b('c'), value: b('3') }])]);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(await value(db, 'c')).toBe('3');
  });
});
