/**
 * A copy of the data directory's files taken before LevelDB opens it, so that a failed or
 * refused start never destroys data: LevelDB's open replays and deletes the write-ahead log
 * and deletes every table file its MANIFEST does not name.
 *
 * The copy is made of hard links: LevelDB never changes a file in place once it is
 * complete (tables are immutable; a new log, MANIFEST and CURRENT are written at each open),
 * so a link keeps the file exactly as it was for the cost of a directory entry. Where links
 * are not possible (a file system without them) the files are copied.
 */
import { copyFile, link, mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isLevelDbFile } from './leveldb-format.js';
import { syncDir } from './sync-dir.js';

/** Directory entries Warren keeps inside the data dir next to LevelDB's files (LevelDB ignores directories). */
export const SNAPSHOT_DIR = '.warren-open-snapshot';
/** written into the snapshot once every file is in it (and synced) */
const COMPLETE_MARK = '.complete';

export interface FileSnapshot {
  readonly path: string;
  readonly files: readonly string[];
  /** true when the files had to be copied (no hard links on this file system) */
  readonly copied: boolean;
}

/**
 * Links (or copies) every LevelDB file of `dir` into `dir/.warren-open-snapshot/`, and moves
 * the files named in `move` there (Warren's clean-shutdown record: gone from the data dir
 * once the start has begun, back with the rest if the start is undone).
 */
export async function takeSnapshot(dir: string, move: readonly string[] = []): Promise<FileSnapshot> {
  const path = join(dir, SNAPSHOT_DIR);
  await rm(path, { recursive: true, force: true });
  await mkdir(path);
  const files: string[] = [];
  let copied = false;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile() || !isLevelDbFile(entry.name)) continue;
    copied = await linkOrCopy(join(dir, entry.name), join(path, entry.name), copied);
    files.push(entry.name);
  }
  for (const name of move) {
    try {
      await rename(join(dir, name), join(path, name));
      files.push(name);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
  }
  if (move.length > 0) await syncDir(dir);
  // the links must outlive a power cut that comes after LevelDB deleted the originals
  const mark = await open(join(path, COMPLETE_MARK), 'w');
  await mark.sync();
  await mark.close();
  await syncDir(path);
  return { path, files, copied };
}

/**
 * A snapshot left in the data dir by a start that died before it finished its checks: the
 * files are put back when the snapshot was complete (LevelDB may have opened the directory
 * since, and only the snapshot holds what it started from); an incomplete one is dropped
 * (LevelDB's open comes after the snapshot is complete, so nothing was touched).
 * Returns what was done, or null when there was no snapshot.
 */
export async function undoInterruptedStart(dir: string): Promise<'restored' | 'dropped' | null> {
  const path = join(dir, SNAPSHOT_DIR);
  const entries = await readdir(path).catch((e: unknown) => {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw e;
  });
  if (entries === null) return null;
  if (!entries.includes(COMPLETE_MARK)) {
    await rm(path, { recursive: true, force: true });
    return 'dropped';
  }
  await restoreSnapshot(dir, { path, files: entries.filter((n) => n !== COMPLETE_MARK), copied: false });
  return 'restored';
}

/** A hard link, or a copy when the file system has none (returns true from then on). */
async function linkOrCopy(from: string, to: string, copy: boolean): Promise<boolean> {
  if (!copy) {
    try {
      await link(from, to);
      return false;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV' && code !== 'EMLINK') throw e;
    }
  }
  await copyFile(from, to);
  return true;
}

export async function dropSnapshot(snapshot: FileSnapshot): Promise<void> {
  await rm(snapshot.path, { recursive: true, force: true });
}

/** Keeps the snapshot under a new name in the data dir (e.g. the damaged files a forced recovery started from). */
export async function keepSnapshot(dir: string, snapshot: FileSnapshot, name: string): Promise<string> {
  const to = join(dir, name);
  await rename(snapshot.path, to);
  return to;
}

/**
 * Puts the data directory back as it was when the snapshot was taken: removes the LevelDB
 * files an open created and links the snapshot's files back. The snapshot is removed after.
 */
export async function restoreSnapshot(dir: string, snapshot: FileSnapshot): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile() && isLevelDbFile(entry.name)) await unlink(join(dir, entry.name));
  }
  let copy = snapshot.copied;
  for (const name of snapshot.files) {
    copy = await linkOrCopy(join(snapshot.path, name), join(dir, name), copy);
  }
  await syncDir(dir);
  await dropSnapshot(snapshot);
}
