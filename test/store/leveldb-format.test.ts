// The LevelDB file decoders read what LevelDB itself wrote, and find each kind of damage.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { checkWriteBatch, decodeManifest, readLogFile, verifyTable } from '../../src/store/leveldb-format.js';
import { checkStoreFiles } from '../../src/store/store-files-check.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A LevelDB directory with `n` keys of `size`-byte values; `flush` reopens it so LevelDB writes a table. */
async function levelDir(n: number, size: number, flush: boolean): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'warren-leveldb-format-'));
  dirs.push(dir);
  const db = new Level<string, Buffer>(dir, { valueEncoding: 'buffer' });
  await db.open();
  for (let i = 0; i < n; i += 5000) {
    const batch = db.batch();
    for (let j = i; j < Math.min(n, i + 5000); j++) batch.put(`key-${String(j).padStart(6, '0')}`, Buffer.alloc(size, j % 251));
    await batch.write();
  }
  await db.close();
  if (flush) {
    const again = new Level(dir);
    await again.open();
    await again.close();
  }
  return dir;
}

async function named(dir: string, re: RegExp): Promise<string> {
  const name = (await readdir(dir)).filter((n) => re.test(n)).sort().pop();
  if (name === undefined) throw new Error(`no ${String(re)} in ${dir}`);
  return name;
}

describe('LevelDB file decoders', () => {
  it('read a write-ahead log, a MANIFEST and a table LevelDB wrote, without a problem', async () => {
    const dir = await levelDir(2000, 100, false);
    const wal = readLogFile(await readFile(join(dir, await named(dir, /\.log$/))));
    expect(wal.corruptions).toEqual([]);
    expect(wal.truncatedTail).toBeNull();
    expect(wal.records.length).toBe(1);
    expect(checkWriteBatch(wal.records[0]!.data).count).toBe(2000);
    expect(() => checkWriteBatch(wal.records[0]!.data.subarray(0, 500))).toThrow(/runs past|says 2000 operations/);

    const flushed = await levelDir(20000, 100, true);
    const manifest = decodeManifest(readLogFile(await readFile(join(flushed, await named(flushed, /^MANIFEST-/)))).records);
    expect(manifest.comparator).toBe('leveldb.BytewiseComparator');
    expect(manifest.tables.size).toBeGreaterThan(0);
    for (const t of manifest.tables.values()) {
      const table = await readFile(join(flushed, `${String(t.number).padStart(6, '0')}.ldb`));
      expect(table.length).toBe(t.size);
      expect(verifyTable(table)).toEqual([]);
    }
    expect(await checkStoreFiles(flushed, null)).toMatchObject({ findings: [], warnings: [] });
  });

  it('find a damaged log record, a log cut short and a damaged table block', async () => {
    const dir = await levelDir(2000, 100, false);
    const walName = await named(dir, /\.log$/);
    const wal = await readFile(join(dir, walName));

    const flipped = Buffer.from(wal);
    flipped[40000] ^= 0x01;
    const damaged = readLogFile(flipped);
    expect(damaged.corruptions[0]).toMatchObject({ reason: 'checksum mismatch' });
    expect(damaged.records).toEqual([]);

    const cut = readLogFile(wal.subarray(0, 50000));
    expect(cut.corruptions).toEqual([]);
    expect(cut.truncatedTail).toEqual({ offset: 0, bytes: 50000 });

    const flushed = await levelDir(20000, 100, true);
    const tableName = await named(flushed, /\.ldb$/);
    const table = await readFile(join(flushed, tableName));
    table[Math.floor(table.length / 3)] ^= 0x80;
    const problems = verifyTable(table);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.reason).toMatch(/checksum mismatch/);
    await writeFile(join(flushed, tableName), table);
    const check = await checkStoreFiles(flushed, null);
    expect(check.findings).toEqual([expect.objectContaining({ file: tableName, remedy: 'repair' })]);
  });

  it('a MANIFEST ending in a partial record is damage after a clean shutdown, a write a crash interrupted otherwise', async () => {
    // several memtable flushes in one session: a MANIFEST of several edits
    const dir = await levelDir(100000, 100, false);
    const files = new Map<string, number>();
    for (const name of await readdir(dir)) if (/^(CURRENT|MANIFEST-.*|.*\.(log|ldb))$/.test(name)) files.set(name, (await readFile(join(dir, name))).length);
    const manifestName = await named(dir, /^MANIFEST-/);
    const manifest = await readFile(join(dir, manifestName));
    // what a writer that died mid-record leaves: a header promising 100 bytes, and 10 of them
    const partial = Buffer.alloc(17);
    partial.writeUInt16LE(100, 4);
    partial[6] = 1;
    await writeFile(join(dir, manifestName), Buffer.concat([manifest, partial]));
    const afterCrash = await checkStoreFiles(dir, null);
    expect(afterCrash.findings, JSON.stringify(afterCrash)).toEqual([]);
    expect(afterCrash.warnings.join('\n')).toMatch(/cut off in a record/);
    const afterClean = await checkStoreFiles(dir, files);
    expect(afterClean.findings.map((f) => f.problem)).toEqual([
      `${manifest.length + 17} bytes, ${manifest.length} at the last clean shutdown (grown)`,
      `cut off in a record at offset ${manifest.length} (17 bytes)`,
    ]);
    // cut inside an earlier edit instead: LevelDB would replay from a log it deleted long ago
    await writeFile(join(dir, manifestName), manifest.subarray(0, manifest.length - 3));
    expect((await checkStoreFiles(dir, null)).findings.map((f) => f.problem).join('\n')).toMatch(/missing: the MANIFEST names it \(the MANIFEST is older than the data\)/);
  });
});
