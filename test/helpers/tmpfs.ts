// A small file system of its own for a test (tmpfs), so that a test can fill a disk without
// touching the machine's. Needs root (as here and in CI): `mount -t tmpfs -o size=… tmpfs dir`.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Tmpfs {
  readonly dir: string;
  /** unmounts (lazily, should a process still hold a file) and removes the mount point */
  unmount(): Promise<void>;
}

export async function mountTmpfs(sizeBytes: number): Promise<Tmpfs> {
  const dir = await mkdtemp(join(tmpdir(), 'warren-tmpfs-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir]);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`cannot mount a tmpfs for this test (it needs root): ${(e as Error).message}`);
  }
  return {
    dir,
    async unmount() {
      await run('umount', ['-l', dir]).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
