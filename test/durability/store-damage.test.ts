// Damage to the store while Warren is stopped is never silent: each kind of damage makes
// the next start refuse, with an error that names the file (and what the last clean shutdown
// held), and the refused start leaves every file as it was. `--force-recovery` then starts
// with what can be read, keeps the damaged files aside and logs at error level how many
// messages are missing and from which queue. (Before: Warren started with 8.7k–18.6k of 20k
// messages after damage to the write-ahead log, logging only at info level; a MANIFEST cut
// short made LevelDB delete tables before Warren refused the directory.)
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { exchangeKey, indexKey } from '../../src/store/keys.js';
import {
  openConfirmChannel,
  openConnection,
  removeDir,
  runWarrenExpectingExit,
  spawnWarren,
  tempDataDir,
  type WarrenChild,
  type WarrenExit,
} from './harness.js';
import { currentManifest, cutShort, fileDigests, flipBytes, largestTable, walFile } from './store-damage-helpers.js';

const TIMEOUT = 60_000;

interface LogRecord {
  level: number;
  msg: string;
}

const dirs: string[] = [];
const children: WarrenChild[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) await c.kill9();
  for (const d of dirs.splice(0)) await removeDir(d);
});

function records(output: readonly string[]): LogRecord[] {
  return output.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogRecord);
}

function errors(output: readonly string[]): string[] {
  return records(output)
    .filter((r) => r.level >= 50)
    .map((r) => r.msg);
}

async function start(dataDir: string, args: string[] = []): Promise<WarrenChild> {
  const child = await spawnWarren(dataDir, args);
  children.push(child);
  return child;
}

/**
 * A fresh data dir holding `perQueue` persistent messages (numbered bodies padded to
 * `bodySize`) in each of the durable queues, every one confirmed; then a clean stop. With
 * `tables`, Warren is started and stopped once more: what was still only in LevelDB's log
 * (its memtable is larger than these fills) is then in a table file, as LevelDB writes the
 * log it recovers into one when it opens.
 */
async function filledStore(queues: readonly string[], perQueue: number, bodySize: number, tables = false): Promise<string> {
  const dataDir = await tempDataDir();
  dirs.push(dataDir);
  const warren = await start(dataDir);
  const conn = await openConnection(warren.url);
  const ch = await openConfirmChannel(conn);
  for (const q of queues) await ch.assertQueue(q, { durable: true });
  for (let i = 0; i < perQueue; i++) {
    const body = Buffer.alloc(bodySize, 0x2e);
    body.write(String(i));
    for (const q of queues) ch.sendToQueue(q, body, { persistent: true });
    if (i % 500 === 499) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
  await conn.close();
  expect(await warren.terminate()).toBe(0);
  children.splice(children.indexOf(warren), 1);
  if (tables) {
    const again = await start(dataDir);
    expect(await again.terminate()).toBe(0);
    children.splice(children.indexOf(again), 1);
  }
  return dataDir;
}

async function queueCounts(warren: WarrenChild, queues: readonly string[]): Promise<number[]> {
  const conn = await openConnection(warren.url);
  const ch = await conn.createChannel();
  const counts: number[] = [];
  for (const q of queues) counts.push((await ch.checkQueue(q)).messageCount);
  await conn.close();
  return counts;
}

/** The refused start: exit 1, one error naming `file` and --force-recovery, nothing listening, every file as it was. */
async function expectRefused(dataDir: string, file: string, before: Map<string, string>): Promise<WarrenExit> {
  const exit = await runWarrenExpectingExit(dataDir);
  expect(exit.code).toBe(1);
  const msgs = records(exit.output).map((r) => r.msg);
  expect(msgs).not.toContain('Warren listening');
  const failed = errors(exit.output).find((m) => m.startsWith('Warren failed to start: the store in'));
  expect(failed, exit.output.join('\n')).toBeDefined();
  expect(failed).toContain(`${file}:`);
  expect(failed).toContain('--force-recovery');
  expect(await fileDigests(dataDir)).toEqual(before);
  return exit;
}

describe('a damaged store: refused by default, data intact; --force-recovery starts with what can be read', () => {
  it(
    'a write-ahead log cut short after a clean shutdown',
    async () => {
      const dataDir = await filledStore(['wal.cut'], 5000, 100);
      const wal = await cutShort(dataDir, await walFile(dataDir), 0.5);
      const before = await fileDigests(dataDir);

      const refused = await expectRefused(dataDir, wal, before);
      // it says what the last clean shutdown held, per queue
      expect(errors(refused.output).join('\n')).toContain("queue 'wal.cut' in vhost '/': 5000");

      const warren = await start(dataDir, ['--force-recovery']);
      const [count] = await queueCounts(warren, ['wal.cut']);
      expect(count).toBeLessThan(5000);
      const errs = errors(warren.output);
      expect(errs.some((m) => m.startsWith('store damaged; starting with what can be read') && m.includes(wal))).toBe(true);
      expect(errs).toContainEqual(expect.stringContaining(`queue 'wal.cut' in vhost '/': ${count} messages, 5000 at the last clean shutdown (${5000 - count!} missing)`));
      // the damaged files are kept aside, as they were
      const kept = (await readdir(dataDir)).filter((n) => n.startsWith('damaged-'));
      expect(kept).toHaveLength(1);
      const keptDigests = await fileDigests(join(dataDir, kept[0]!));
      expect(keptDigests.get(wal)).toBe(before.get(wal));
    },
    TIMEOUT,
  );

  it(
    'a damaged write-ahead log record (flipped bytes)',
    async () => {
      const dataDir = await filledStore(['wal.flip'], 5000, 100);
      const wal = await flipBytes(dataDir, await walFile(dataDir));
      const before = await fileDigests(dataDir);
      const refused = await expectRefused(dataDir, wal, before);
      expect(errors(refused.output).join('\n')).toMatch(/write-ahead log unreadable, first at offset [0-9]+ \(checksum mismatch\)/);

      const warren = await start(dataDir, ['--force-recovery']);
      const [count] = await queueCounts(warren, ['wal.flip']);
      expect(count).toBeLessThan(5000);
      expect(errors(warren.output)).toContainEqual(expect.stringContaining(`(${5000 - count!} missing)`));
    },
    TIMEOUT,
  );

  it(
    'a MANIFEST cut short (LevelDB would delete the tables it no longer names): refused before LevelDB touches anything; forced recovery rebuilds it and loses nothing',
    async () => {
      // memtable flushes: a MANIFEST of several edits, and tables it names (24 MB, more than a memtable, then a restart)
      const queues = ['m.a', 'm.b', 'm.c'];
      const dataDir = await filledStore(queues, 4000, 2000, true);
      expect((await readdir(dataDir)).filter((n) => /^[0-9]+\.(ldb|sst)$/.test(n)).length).toBeGreaterThan(1);
      const manifest = await cutShort(dataDir, await currentManifest(dataDir), 0.3);
      const before = await fileDigests(dataDir);
      await expectRefused(dataDir, manifest, before);

      const warren = await start(dataDir, ['--force-recovery']);
      expect(await queueCounts(warren, queues)).toEqual([4000, 4000, 4000]);
      expect(errors(warren.output).some((m) => m.startsWith('store damaged; starting with what can be read') && m.includes(manifest))).toBe(true);
    },
    TIMEOUT,
  );

  it(
    'flipped bytes in a table file (.ldb)',
    async () => {
      const queues = ['t.a', 't.b'];
      const dataDir = await filledStore(queues, 4000, 1000, true);
      const table = await flipBytes(dataDir, await largestTable(dataDir));
      const before = await fileDigests(dataDir);
      const refused = await expectRefused(dataDir, table, before);
      expect(errors(refused.output).join('\n')).toMatch(new RegExp(`${table.replace('.', '\\.')}: at offset [0-9]+: block at [0-9]+: checksum mismatch`));

      const warren = await start(dataDir, ['--force-recovery']);
      const counts = await queueCounts(warren, queues);
      expect(errors(warren.output).some((m) => m.startsWith('store damaged; starting with what can be read') && m.includes(table))).toBe(true);
      // index entries the unreadable blocks held are reported missing, per queue
      const missing = 8000 - counts[0]! - counts[1]!;
      const losses = errors(warren.output).filter((m) => m.startsWith('store: started with fewer or other messages')).join('\n');
      if (missing > 0) expect(losses).toMatch(/\([0-9]+ missing\)/);
      else expect(losses).toBe('');
    },
    TIMEOUT,
  );

  it(
    'per-queue counts after a clean shutdown: entries gone while Warren was stopped are found at start, named by queue',
    async () => {
      const queues = ['c.a', 'c.b'];
      const dataDir = await filledStore(queues, 100, 10);
      // damage no file check can see: 10 index entries of c.b removed behind Warren's back
      const raw = new Level<Buffer, Buffer>(dataDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await raw.open();
      const ids = new Set<number>();
      for await (const key of raw.keys({ gte: Buffer.from([0x20]), lt: Buffer.from([0x21]) })) ids.add(key.readUInt32BE(1));
      const cb = Math.max(...ids);
      for (let seq = 1; seq <= 10; seq++) await raw.del(indexKey(cb, 0, seq));
      await raw.close();
      const before = await fileDigests(dataDir);

      const exit = await runWarrenExpectingExit(dataDir);
      expect(exit.code).toBe(1);
      const failed = errors(exit.output).find((m) => m.startsWith('Warren failed to start:'));
      expect(failed).toContain("is damaged: queue 'c.b' in vhost '/': 90 messages, 100 at the last clean shutdown (10 missing). At the last");
      expect(await fileDigests(dataDir)).toEqual(before);

      const warren = await start(dataDir, ['--force-recovery']);
      expect(await queueCounts(warren, queues)).toEqual([100, 90]);
      expect(errors(warren.output)).toContainEqual(expect.stringContaining("queue 'c.b' in vhost '/': 90 messages, 100 at the last clean shutdown (10 missing)"));
    },
    TIMEOUT,
  );

  it(
    'damaged topology records (a JSON value cut short, arguments that do not decode): refused naming them, not a JSON error; forced, set aside in quarantine/ and the rest starts',
    async () => {
      const dataDir = await filledStore(['topo.q'], 10, 10);
      const setup = await start(dataDir);
      const conn = await openConnection(setup.url);
      const ch = await conn.createChannel();
      await ch.assertExchange('topo.broken', 'direct', { durable: true });
      await ch.assertExchange('topo.ok', 'fanout', { durable: true });
      await ch.bindQueue('topo.q', 'topo.ok', '', { 'x-note': 'kept' });
      await conn.close();
      expect(await setup.terminate()).toBe(0);
      children.splice(children.indexOf(setup), 1);

      const raw = new Level<Buffer, Buffer>(dataDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await raw.open();
      const broken = exchangeKey('/', 'topo.broken');
      const value = await raw.get(broken);
      await raw.put(broken, value!.subarray(0, 20));
      for await (const [key, v] of raw.iterator({ gte: Buffer.from([0x04]), lt: Buffer.from([0x05]) })) {
        const j = JSON.parse(v.toString()) as { arguments: string };
        // a field table whose entry claims more bytes than there are
        j.arguments = Buffer.from([0, 0, 0, 9, 1, 0x61, 0x53, 0, 0, 1, 0]).toString('base64');
        await raw.put(key, Buffer.from(JSON.stringify(j)));
      }
      await raw.close();
      const before = await fileDigests(dataDir);

      const exit = await runWarrenExpectingExit(dataDir);
      expect(exit.code).toBe(1);
      const failed = errors(exit.output).find((m) => m.startsWith('Warren failed to start:'));
      expect(failed).toContain('exchange record "/" "topo.broken": not JSON');
      expect(failed).toContain('binding record "/" "topo.ok" "q": arguments do not decode');
      expect(failed).toContain('--force-recovery');
      expect(await fileDigests(dataDir)).toEqual(before);

      const warren = await start(dataDir, ['--force-recovery']);
      const conn2 = await openConnection(warren.url);
      const ch2 = await conn2.createChannel();
      expect((await ch2.checkQueue('topo.q')).messageCount).toBe(10);
      await ch2.checkExchange('topo.ok');
      expect(errors(warren.output)).toContainEqual(expect.stringMatching(/^store: 2 damaged records moved to .*quarantine/));
      const quarantined = (await readdir(join(dataDir, 'quarantine'))).filter((n) => n.endsWith('.json'));
      expect(quarantined).toHaveLength(1);
      await conn2.close();
    },
    TIMEOUT,
  );

  it(
    'a clean stop and start with nothing damaged: no error, and the next start compares again',
    async () => {
      const dataDir = await filledStore(['ok'], 2000, 100);
      const warren = await start(dataDir);
      expect(await queueCounts(warren, ['ok'])).toEqual([2000]);
      expect(errors(warren.output)).toEqual([]);
      expect(await warren.terminate()).toBe(0);
      const again = await start(dataDir);
      expect(await queueCounts(again, ['ok'])).toEqual([2000]);
      expect(errors(again.output)).toEqual([]);
      expect(records(again.output).map((r) => r.msg)).not.toContain('store: no clean-shutdown record (first start, or the last stop was not clean): counts not compared');
    },
    TIMEOUT,
  );
});
