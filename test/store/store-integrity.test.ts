// The clean-shutdown record and the start's snapshot over their life cycle, in process.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CLEAN_SHUTDOWN_FILE, readCleanShutdown } from '../../src/store/clean-shutdown.js';
import { SNAPSHOT_DIR, takeSnapshot } from '../../src/store/file-snapshot.js';
import { indexKey } from '../../src/store/keys.js';
import { LevelStore } from '../../src/store/level-store.js';
import { StoreDamagedError } from '../../src/store/store-integrity.js';
import { LogCapture } from '../robustness/log-capture.js';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const props = Buffer.from([0x10, 0x00, 0x02]);

/** A store of `n` persistent messages in queue 'q' (id 1), closed cleanly. */
async function closedStore(n: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'warren-integrity-'));
  dirs.push(dir);
  const store = new LevelStore(dir, silent);
  await store.open();
  await store.recover();
  store.putVhost('/');
  store.putQueue({ vhost: '/', name: 'q', id: 1, autoDelete: false, arguments: new Map() });
  for (let i = 1; i <= n; i++) {
    const messageId = store.putMessage({ exchange: '', routingKey: 'q', rawProperties: props, body: Buffer.from(`m${i}`) });
    store.putEntry({ queueId: 1, priority: 0, seq: i, messageId, refs: 1, redelivered: false, transient: false, expiresAt: 0 });
  }
  await store.close();
  return dir;
}

async function dropEntries(dir: string, seqs: readonly number[]): Promise<void> {
  const raw = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await raw.open();
  for (const seq of seqs) await raw.del(indexKey(1, 0, seq));
  await raw.close();
}

describe('store integrity over a start', () => {
  it('a clean close records the counts per queue; the verified start takes the record away with its snapshot', async () => {
    const dir = await closedStore(5);
    const record = await readCleanShutdown(dir);
    expect(record).toMatchObject({ queues: [{ id: 1, vhost: '/', name: 'q', entries: 5 }] });
    const store = new LevelStore(dir, silent);
    await store.open();
    // during the start the record is in the snapshot, not in the data dir
    expect(await readdir(dir)).not.toContain(CLEAN_SHUTDOWN_FILE);
    expect(await readdir(join(dir, SNAPSHOT_DIR))).toContain(CLEAN_SHUTDOWN_FILE);
    expect((await store.recover()).queues).toMatchObject([{ queueId: 1, count: 5 }]);
    expect(await readdir(dir)).not.toContain(SNAPSHOT_DIR);
    await store.close();
    expect(await readCleanShutdown(dir)).toMatchObject({ queues: [{ id: 1, entries: 5 }] });
  });

  it('fewer entries than recorded: recovery refuses and the directory is as it was, record included', async () => {
    const dir = await closedStore(5);
    await dropEntries(dir, [2, 3]);
    const store = new LevelStore(dir, silent);
    await store.open();
    const refusal = await store.recover().catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(StoreDamagedError);
    expect((refusal as Error).message).toContain("queue 'q' in vhost '/': 3 messages, 5 at the last clean shutdown (2 missing)");
    expect(await readCleanShutdown(dir)).toMatchObject({ queues: [{ entries: 5 }] });
    expect(await readdir(dir)).not.toContain(SNAPSHOT_DIR);
    // a forced start takes what is there
    const logs = new LogCapture();
    const forced = new LevelStore(dir, logs.logger, { forceRecovery: true });
    await forced.open();
    expect((await forced.recover()).queues).toMatchObject([{ queueId: 1, count: 3 }]);
    expect(logs.errors().map((l) => l.msg).join('\n')).toContain('(2 missing)');
    expect((await readdir(dir)).filter((n) => n.startsWith('damaged-'))).toHaveLength(1);
    await forced.close();
  });

  it('a start that died after its snapshot (LevelDB may have changed the files since) is undone at the next start', async () => {
    const dir = await closedStore(5);
    // what the dead start left: its complete snapshot (with the record), then files LevelDB changed
    await takeSnapshot(dir, [CLEAN_SHUTDOWN_FILE]);
    await dropEntries(dir, [1]);
    const logs = new LogCapture();
    const store = new LevelStore(dir, logs.logger);
    await store.open();
    expect(logs.lines.map((l) => l.msg)).toContainEqual(expect.stringContaining('a previous start died before its checks finished'));
    expect((await store.recover()).queues).toMatchObject([{ queueId: 1, count: 5 }]);
    await store.close();
  });
});
