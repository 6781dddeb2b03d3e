import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** fsyncs a directory, so that the names created, renamed or removed in it are durable */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `data` so that a crash leaves the old file or the new one, never a
 * part: a temporary file beside it, fsync, rename over, fsync of the directory.
 */
export async function replaceFileDurably(path: string, data: string | Buffer, tmp = `${path}.tmp`): Promise<void> {
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDir(dirname(path));
}
