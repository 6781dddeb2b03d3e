import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { META_DEFER_MS, OpLog } from '../../src/cluster/op-log.js';
import { decodeRecord, encodeRecord } from '../../src/cluster/record.js';

const dirs: string[] = [];
const logs: OpLog[] = [];
afterEach(async () => {
  for (const l of logs.splice(0)) await l.close().catch(() => {});
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'warren-oplog-'));
  dirs.push(d);
  return join(d, 'log');
}

async function openLog(dir: string, segmentBytes?: number): Promise<OpLog> {
  const log = new OpLog(dir, segmentBytes === undefined ? {} : { segmentBytes });
  await log.open();
  logs.push(log);
  return log;
}

async function reopen(log: OpLog, segmentBytes?: number): Promise<OpLog> {
  await log.close();
  logs.splice(logs.indexOf(log), 1);
  return openLog(log.dir, segmentBytes);
}

const rec = (term: number, seq: number, value = `v${seq}`): Buffer => encodeRecord(term, seq, [{ type: 'put', key: Buffer.from(`k${seq}`), value: Buffer.from(value) }]);
const range = (from: number, to: number, term = 3): Buffer[] => Array.from({ length: to - from + 1 }, (_, i) => rec(term, from + i));

function valueOf(buf: Buffer | undefined): string {
  const op = decodeRecord(buf!).ops[0]!;
  return op.type === 'put' ? op.value.toString() : '';
}

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

describe('op log (segment files)', () => {
  it('keeps appended records, positions and the applied mark across a reopen', async () => {
    let log = await openLog(await freshDir());
    await log.append(range(1, 3), true);
    await log.append([rec(4, 4)], false);
    await log.setApplied({ seq: 2, term: 3 });
    log = await reopen(log);
    expect(log.lastPosition).toEqual({ seq: 4, term: 4 });
    expect(log.applied).toEqual({ seq: 2, term: 3 });
    expect(valueOf(await log.get(3))).toBe('v3');
    expect(await log.termAt(4)).toBe(4);
    expect(await log.get(5)).toBeUndefined();
    await expect(log.append([rec(4, 6)], true)).rejects.toThrow(/after 4/);
    await log.append([rec(4, 5)], true);
    expect(log.lastPosition.seq).toBe(5);
  });

  it('writes positions noted with noteApplied in one deferred meta write, and at close at the latest', async () => {
    let log = await openLog(await freshDir());
    await log.append(range(1, 5), true);
    const writeMeta = vi.spyOn(log as unknown as { writeMeta: (sync: boolean) => Promise<void> }, 'writeMeta');
    for (let seq = 1; seq <= 4; seq++) log.noteApplied({ seq, term: 3 });
    expect(log.applied).toEqual({ seq: 4, term: 3 });
    expect(writeMeta).not.toHaveBeenCalled();
    await vi.waitFor(() => expect(writeMeta).toHaveBeenCalledTimes(1), { timeout: 5000, interval: META_DEFER_MS });
    log.noteApplied({ seq: 5, term: 3 });
    // closed before the deferred write is due: close writes it
    log = await reopen(log);
    expect(log.applied).toEqual({ seq: 5, term: 3 });
    expect(log.committed).toBe(5);
  });

  it('keeps the commit point it was told (never past its records, never back)', async () => {
    let log = await openLog(await freshDir());
    await log.append(range(1, 5), true);
    await log.setCommitted(4);
    await log.setCommitted(2);
    expect(log.committed).toBe(4);
    await log.setApplied({ seq: 1, term: 3 });
    log = await reopen(log);
    expect(log.committed).toBe(4);
    expect(log.applied.seq).toBe(1);
    await log.setApplied({ seq: 5, term: 3 });
    expect(log.committed).toBe(5);
  });

  it('cuts a torn or corrupt tail on open (a write a crash cut short was never acknowledged)', async () => {
    const dir = await freshDir();
    let log = await openLog(dir);
    await log.append(range(1, 5), true);
    await log.close();
    logs.splice(0);
    const [seg] = await segments(dir);
    const path = join(dir, seg!);
    const { size } = await stat(path);
    const h = await open(path, 'r+');
    await h.truncate(size - 3); // record 5 torn
    await h.close();
    log = await openLog(dir);
    expect(log.lastPosition.seq).toBe(4);
    await log.append([rec(3, 5, 'again')], true);
    // a flipped byte inside record 5: its checksum no longer matches
    await log.close();
    logs.splice(0);
    const h2 = await open(path, 'r+');
    const { size: size2 } = await h2.stat();
    await h2.write(Buffer.from([0xff]), 0, 1, size2 - 2);
    await h2.close();
    log = await openLog(dir);
    expect(log.lastPosition.seq).toBe(4);
    expect(await log.get(5)).toBeUndefined();
  });

  it('refuses every write after one failed, until it is opened again from what the files hold', async () => {
    let log = await openLog(await freshDir());
    await log.append(range(1, 2), true);
    // the segment's handle goes away underneath: the next write fails (EBADF)
    const segs = (log as unknown as { segments: { handle: { close(): Promise<void> } }[] }).segments;
    await segs[0]!.handle.close();
    await expect(log.append([rec(3, 3)], true)).rejects.toThrow();
    await expect(log.append([rec(3, 4)], true)).rejects.toThrow(/failed earlier/);
    await expect(log.setApplied({ seq: 1, term: 3 })).rejects.toThrow(/failed earlier/);
    log = await reopen(log);
    expect(log.lastPosition.seq).toBe(2);
    await log.append([rec(3, 3)], true);
    expect(log.lastPosition.seq).toBe(3);
  });

  it('refuses to open when the records end below the applied position', async () => {
    const dir = await freshDir();
    const log = await openLog(dir);
    await log.append(range(1, 3), true);
    await log.setApplied({ seq: 3, term: 3 });
    await log.close();
    logs.splice(0);
    for (const s of await segments(dir)) await rm(join(dir, s));
    await expect(new OpLog(dir).open()).rejects.toThrow(/below the applied/);
  });

  it('rolls over to new segments, prunes whole segments, and reads pruned seqs as absent', async () => {
    const dir = await freshDir();
    let log = await openLog(dir, 200);
    for (let s = 1; s <= 30; s++) await log.append([rec(3, s)], false);
    const before = await segments(dir);
    expect(before.length).toBeGreaterThan(3);
    await log.setApplied({ seq: 30, term: 3 });
    await log.prune(20);
    expect(log.basePosition).toEqual({ seq: 20, term: 3 });
    expect(await log.get(20)).toBeUndefined();
    expect(await log.get(21)).toBeDefined();
    const after = await segments(dir);
    expect(after.length).toBeLessThan(before.length);
    expect(Number(after[0]!.slice(0, -4))).toBeLessThanOrEqual(21);
    log = await reopen(log, 200);
    expect(log.basePosition).toEqual({ seq: 20, term: 3 });
    expect(log.lastPosition).toEqual({ seq: 30, term: 3 });
    for (let s = 21; s <= 30; s++) expect(decodeRecord((await log.get(s))!).seq).toBe(s);
  });

  it('cuts a divergent tail across segments and continues after the cut', async () => {
    let log = await openLog(await freshDir(), 200);
    for (let s = 1; s <= 20; s++) await log.append([rec(3, s)], false);
    await log.setApplied({ seq: 5, term: 3 });
    await expect(log.truncateAfter(4)).rejects.toThrow(/applied/);
    await log.truncateAfter(7);
    expect(log.lastPosition).toEqual({ seq: 7, term: 3 });
    expect(await log.get(8)).toBeUndefined();
    await log.append([rec(9, 8, 'new')], true);
    log = await reopen(log, 200);
    expect(log.lastPosition).toEqual({ seq: 8, term: 9 });
    expect(valueOf(await log.get(8))).toBe('new');
    expect(decodeRecord((await log.get(7))!).term).toBe(3);
  });

  it('restarts after a snapshot, and keeps the syncing mark until it is finished', async () => {
    let log = await openLog(await freshDir());
    await log.append(range(1, 4), true);
    await log.beginSnapshot();
    log = await reopen(log);
    expect(log.syncing).toBe(true);
    await log.finishSnapshot({ seq: 100, term: 7 });
    expect(log.syncing).toBe(false);
    log = await reopen(log);
    expect(log.syncing).toBe(false);
    expect(log.basePosition).toEqual({ seq: 100, term: 7 });
    expect(log.applied).toEqual({ seq: 100, term: 7 });
    expect(log.lastPosition).toEqual({ seq: 100, term: 7 });
    expect(await log.termAt(100)).toBe(7);
    expect(await log.get(3)).toBeUndefined();
    await log.append([rec(7, 101)], true);
    log = await reopen(log);
    expect(log.lastPosition).toEqual({ seq: 101, term: 7 });
  });

  it('upgrades an op log kept in LevelDB (the earlier format) in place', async () => {
    const dir = await freshDir();
    const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    const key = (seq: number): Buffer => {
      const k = Buffer.alloc(9);
      k[0] = 0x30;
      k.writeBigUInt64BE(BigInt(seq), 1);
      return k;
    };
    const pos = (seq: number, term: number): Buffer => {
      const b = Buffer.alloc(16);
      b.writeBigUInt64BE(BigInt(seq), 0);
      b.writeBigUInt64BE(BigInt(term), 8);
      return b;
    };
    for (let s = 3; s <= 6; s++) await db.put(key(s), rec(2, s));
    await db.put(Buffer.from('\x00base', 'latin1'), pos(2, 2));
    await db.put(Buffer.from('\x00applied', 'latin1'), pos(4, 2));
    await db.close();
    let log = await openLog(dir);
    expect(log.basePosition).toEqual({ seq: 2, term: 2 });
    expect(log.applied).toEqual({ seq: 4, term: 2 });
    expect(log.lastPosition).toEqual({ seq: 6, term: 2 });
    expect(decodeRecord((await log.get(5))!).seq).toBe(5);
    expect((await readdir(dir)).filter((n) => n === 'CURRENT' || n.endsWith('.ldb'))).toEqual([]);
    log = await reopen(log);
    expect(log.lastPosition).toEqual({ seq: 6, term: 2 });
  });
});

describe('record validation on receipt', () => {
  it('refuses what decodeRecord refuses, and accepts what it accepts', async () => {
    const { validateRecord, RecordFormatError } = await import('../../src/cluster/record.js');
    const good = encodeRecord(2, 7, [
      { type: 'put', key: Buffer.from('k'), value: Buffer.from('value') },
      { type: 'del', key: Buffer.from('gone') },
    ]);
    expect(() => validateRecord(good)).not.toThrow();
    const cases: Buffer[] = [good.subarray(0, 10), good.subarray(0, good.length - 1), Buffer.concat([good, Buffer.from([0])])];
    const badType = Buffer.from(good);
    badType[20] = 9;
    cases.push(badType);
    const longKey = Buffer.from(good);
    longKey.writeUInt32BE(0xffffff, 21);
    cases.push(longKey);
    const zeroSeq = encodeRecord(2, 7, []);
    zeroSeq.writeBigUInt64BE(0n, 8);
    cases.push(zeroSeq);
    for (const c of cases) {
      expect(() => decodeRecord(c)).toThrow(RecordFormatError);
      expect(() => validateRecord(c)).toThrow(RecordFormatError);
    }
  });
});
