// A stop that could not write what the store still held must not look like a clean stop:
// SIGTERM while the store fails exits non-zero and logs why. (It used to exit 0 without a
// word: the shutdown waited for the store's retry timer, which does not keep Node alive.)
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openConfirmChannel, openConnection, removeDir, tempDataDir, TEST_TIMEOUT } from './harness.js';

const CHILD = fileURLToPath(new URL('./failing-store-child.mjs', import.meta.url));
const FLUSH_CHILD = fileURLToPath(new URL('./flush-retry-child.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/broker.js', import.meta.url));

interface LogRecord {
  level: number;
  msg: string;
  port?: number;
}

let dataDir: string | null = null;
afterEach(async () => {
  if (dataDir !== null) await removeDir(dataDir);
  dataDir = null;
});

describe('shutdown with a failing store', () => {
  it(
    'SIGTERM exits 1 and logs that the pending writes could not be made',
    async () => {
      if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npm run build\` first (npm test does)`);
      dataDir = await tempDataDir();
      const child = spawn(process.execPath, [CHILD, 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--log-level', 'info', '--management-port', '0', '--metrics-port', '0'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const records: LogRecord[] = [];
      const stderr: string[] = [];
      createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
      const listening = new Promise<number>((resolve) => {
        createInterface({ input: child.stdout! }).on('line', (l) => {
          const r = JSON.parse(l) as LogRecord;
          records.push(r);
          if (r.msg === 'Warren listening') resolve(r.port!);
        });
      });
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      const port = await listening;

      const conn = await openConnection(`amqp://guest:guest@127.0.0.1:${port}`);
      const ch = await openConfirmChannel(conn);
      await ch.assertQueue('doomed', { durable: true });
      // the store cannot write this message: it is nacked, and its write is retried
      const confirm = new Promise<unknown>((resolve) => ch.sendToQueue('doomed', Buffer.from('make-the-store-fail'), { persistent: true }, (err) => resolve(err)));
      expect(await confirm, 'the message is nacked, never confirmed').not.toBeNull();

      child.kill('SIGTERM');
      const code = await exited;
      expect(code).toBe(1);
      const errors = records.filter((r) => r.level >= 50).map((r) => r.msg);
      expect(errors).toContainEqual(expect.stringMatching(/^Warren shutdown failed: .*could not be written.*EIO: simulated write failure/));
      expect(records.map((r) => r.msg)).not.toContain('Warren stopped');
      expect(stderr).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('LevelStore.flush while writes fail', () => {
  it('keeps the process alive until the retried write answers (the retry timer alone would not)', async () => {
    dataDir = await tempDataDir();
    const { stdout } = await promisify(execFile)(process.execPath, [FLUSH_CHILD, dataDir]);
    expect(stdout.trim()).toBe('flush failed: EIO: simulated write failure');
  }, TEST_TIMEOUT);
});
