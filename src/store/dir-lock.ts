/**
 * An exclusive lock on a data directory across processes, held from before Warren's
 * integrity checks until the store is closed and its clean-shutdown record written.
 * LevelDB's own lock (an fcntl lock on `LOCK`) is only taken inside its open, after the
 * checks, a repair or a snapshot restore have already touched the files; none of them may
 * run while another Warren uses the directory.
 *
 * Node has no file-lock call, so the lock is LevelDB's own, taken on a tiny database in a
 * subdirectory (`.warren-lock`): the same fcntl lock, released by the kernel when the
 * process dies, even by kill -9.
 */
import { join } from 'node:path';
import { Level } from 'level';
import { StoreError } from './store-error.js';

export const LOCK_DIR = '.warren-lock';

export interface DirLock {
  release(): Promise<void>;
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export async function lockDataDir(dir: string): Promise<DirLock> {
  const db = new Level<Buffer, Buffer>(join(dir, LOCK_DIR), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  try {
    await db.open({ createIfMissing: true });
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    if (errorCode(cause) === 'LEVEL_LOCKED') {
      throw new StoreError(`data directory ${dir} is in use by another Warren process`, { cause: e });
    }
    const detail = cause instanceof Error ? cause.message : e instanceof Error ? e.message : String(e);
    throw new StoreError(`cannot lock data directory ${dir}: ${detail}`, { cause: e });
  }
  return { release: () => db.close() };
}
