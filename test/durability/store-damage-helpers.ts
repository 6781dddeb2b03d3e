// Damage injection for the store-damage tests: what a bad disk, a careless copy or a bug in
// a file system does to LevelDB's files while Warren is stopped. Each helper names the file
// it damaged, so a test can check that Warren's refusal names it too.
import { createHash } from 'node:crypto';
import { readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { LOCK_DIR } from '../../src/store/dir-lock.js';

/** sha256 of every file under `dir` (relative path → digest), Warren's lock directory left out (it changes at each start). */
export async function fileDigests(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (d === dir && e.name === LOCK_DIR) continue;
        await walk(p);
      } else if (e.isFile()) {
        out.set(relative(dir, p), createHash('sha256').update(await readFile(p)).digest('hex'));
      }
    }
  };
  await walk(dir);
  return out;
}

async function filesMatching(dir: string, re: RegExp): Promise<{ name: string; size: number }[]> {
  const out: { name: string; size: number }[] = [];
  for (const name of await readdir(dir)) {
    if (re.test(name)) out.push({ name, size: (await stat(join(dir, name))).size });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The newest write-ahead log that holds something. */
export async function walFile(dir: string): Promise<string> {
  const logs = (await filesMatching(dir, /^[0-9]+\.log$/)).filter((f) => f.size > 0);
  if (logs.length === 0) throw new Error(`no non-empty write-ahead log in ${dir}`);
  return logs[logs.length - 1]!.name;
}

export async function currentManifest(dir: string): Promise<string> {
  return (await readFile(join(dir, 'CURRENT'), 'latin1')).trim();
}

/** The largest table file. */
export async function largestTable(dir: string): Promise<string> {
  const tables = await filesMatching(dir, /^[0-9]+\.(ldb|sst)$/);
  if (tables.length === 0) throw new Error(`no table file in ${dir}`);
  return tables.sort((a, b) => b.size - a.size)[0]!.name;
}

/** Cuts a file to `fraction` of its size; returns its name. */
export async function cutShort(dir: string, name: string, fraction: number): Promise<string> {
  const size = (await stat(join(dir, name))).size;
  await truncate(join(dir, name), Math.floor(size * fraction));
  return name;
}

/** Inverts `count` bytes spread over 4 KiB from the middle of a file (the same bytes each run). */
export async function flipBytes(dir: string, name: string, count = 16): Promise<string> {
  const p = join(dir, name);
  const b = await readFile(p);
  const start = Math.floor(b.length / 2);
  for (let i = 0; i < count; i++) {
    const at = start + i * 257;
    if (at < b.length) b[at] = b[at]! ^ 0xff;
  }
  await writeFile(p, b);
  return name;
}
