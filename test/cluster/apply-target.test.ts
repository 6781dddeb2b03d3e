import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LevelApplyTarget } from '../../src/cluster/apply-target.js';
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
