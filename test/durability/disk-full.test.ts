// A full disk, on a tmpfs of the test's own: the disk alarm blocks publishers before the store
// can meet ENOSPC, even with three publishers of 1 MiB persistent messages. (Before: free space
// was read once a second and the bytes in flight were not counted; the store met ENOSPC 0.37 s
// after the alarm fired and nacked every publish from then on.)
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { mountTmpfs, type Tmpfs } from '../helpers/tmpfs.js';
import { openConfirmChannel, openConnection, spawnWarren, type WarrenChild } from './harness.js';

const MiB = 1024 * 1024;
const TIMEOUT = 90_000;

interface LogRecord {
  level: number;
  msg: string;
}

let fs: Tmpfs | null = null;
let warren: WarrenChild | null = null;
afterEach(async () => {
  await warren?.kill9();
  warren = null;
  await fs?.unmount();
  fs = null;
});

function errorLines(output: readonly string[]): string[] {
  return output
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogRecord)
    .filter((r) => r.level >= 50)
    .map((r) => r.msg);
}

describe('a disk filling up with large persistent messages', () => {
  it(
    'the disk alarm blocks three publishers of 1 MiB messages before ENOSPC: every publish confirmed, no write fails',
    async () => {
      fs = await mountTmpfs(160 * MiB);
      const dataDir = join(fs.dir, 'data');
      await mkdir(dataDir);
      const limit = 40 * MiB;
      warren = await spawnWarren(dataDir, ['--disk-free-limit', String(limit)]);

      // incompressible (LevelDB snappy-compresses its tables)
      const body = randomBytes(MiB);
      let confirmed = 0;
      let nacked = 0;
      const publisher = async (n: number): Promise<void> => {
        const conn = await openConnection(warren!.url);
        let blocked = false;
        conn.on('blocked', () => {
          blocked = true;
        });
        const ch = await openConfirmChannel(conn);
        await ch.assertQueue('big', { durable: true });
        // an unbounded producer: up to 32 unconfirmed messages, as fast as the broker takes them, until blocked
        // (a blocked connection's publishes stay unconfirmed until it is unblocked: those are not waited for)
        let outstanding = 0;
        let wake: (() => void) | null = null;
        conn.on('blocked', () => wake?.());
        while (!blocked) {
          outstanding++;
          ch.sendToQueue('big', body, { persistent: true, headers: { n } }, (err) => {
            if (err === null || err === undefined) confirmed++;
            else nacked++;
            outstanding--;
            wake?.();
          });
          if (outstanding >= 32) await new Promise<void>((resolve) => (wake = resolve));
        }
      };
      await Promise.all([publisher(1), publisher(2), publisher(3)]);

      expect(nacked).toBe(0);
      // the alarm engages early: up to 96 MiB were in flight (32 per publisher), and they land after it
      expect(confirmed).toBeGreaterThan(0);
      expect(errorLines(warren.output)).toEqual([]);
      const s = await statfs(fs.dir);
      expect(s.bavail * s.bsize).toBeGreaterThan(0);
      // the client can see connection.blocked before the broker's log line has come through its pipe
      await warren.waitForOutput('resource alarm set: blocking publishers');
    },
    TIMEOUT,
  );
});
