// A disk that fills up (ENOSPC) and is freed again, with Warren running all along, on a tmpfs
// of the test's own. LevelDB keeps a failed write's error and fails every later write with it
// until the database is reopened: before, Warren retried forever, nacked every persistent
// publish and closed every durable declare with 541 until it was restarted. Now the store
// reopens LevelDB (with the checks of a start) once there is room, and writes what it kept.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { mountTmpfs, type Tmpfs } from '../helpers/tmpfs.js';
import { openChannel, openConfirmChannel, openConnection, spawnWarren, type WarrenChild } from './harness.js';

const MiB = 1024 * 1024;
const TIMEOUT = 90_000;

interface LogRecord {
  level: number;
  msg: string;
}

let fs: Tmpfs | null = null;
let warren: WarrenChild | null = null;
let conns: ChannelModel[] = [];
afterEach(async () => {
  for (const c of conns) await c.close().catch(() => {});
  conns = [];
  await warren?.kill9();
  warren = null;
  await fs?.unmount();
  fs = null;
});

function logRecords(output: readonly string[]): LogRecord[] {
  return output.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogRecord);
}

/** Writes a file until the file system has no byte left (ENOSPC); returns its path. */
function fillDisk(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(MiB, 7);
  try {
    for (;;) {
      try {
        writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

/** Resolves when `predicate` holds on a new line of Warren's output (or already does). */
function logged(w: WarrenChild, predicate: (r: LogRecord) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = (): boolean => logRecords(w.output).some(predicate);
    if (check()) return resolve();
    const onData = (): void => {
      if (!check()) return;
      w.process.stdout!.off('data', onData);
      // the line reader runs after this 'data' listener: let it push the line first
      setImmediate(resolve);
    };
    w.process.stdout!.on('data', onData);
  });
}

/** Resolves once `predicate` holds on `times` lines of Warren's output. */
function loggedTimes(w: WarrenChild, predicate: (r: LogRecord) => boolean, times: number): Promise<void> {
  return logged(w, () => logRecords(w.output).filter(predicate).length >= times);
}

type Outcome = 'ack' | 'nack';

function publish(ch: ConfirmChannel, queue: string, n: number, body: Buffer, outcomes: Map<number, Outcome>, persistent = true): Promise<Outcome> {
  return new Promise((resolve) => {
    ch.sendToQueue(queue, body, { persistent, headers: { n } }, (err) => {
      const outcome: Outcome = err === null || err === undefined ? 'ack' : 'nack';
      if (outcomes.has(n)) throw new Error(`message ${n} settled twice`);
      outcomes.set(n, outcome);
      resolve(outcome);
    });
  });
}

async function consumeAll(conn: ChannelModel, queue: string, count: number): Promise<{ n: number; size: number }[]> {
  const ch = await openChannel(conn);
  const got: { n: number; size: number }[] = [];
  if (count > 0) {
    await new Promise<void>((resolve) => {
      void ch.consume(
        queue,
        (m) => {
          if (m === null) return;
          got.push({ n: Number(m.properties.headers?.n), size: m.content.length });
          if (got.length === count) resolve();
        },
        { noAck: true },
      );
    });
  }
  await ch.close();
  return got;
}

describe('a disk that fills up and is freed again, without a restart', () => {
  // 8 KiB bodies go to LevelDB (its failed write needs a reopen); 1 MiB bodies to the body
  // files (store/body-files.ts), whose failed append is retried where it stopped
  it.each([
    ['in LevelDB', 8 * 1024],
    ['in body files', MiB],
  ])(
    'persistent publishes (bodies %s): nacked while the disk is full, then confirms resume, a durable declare succeeds, every confirmed message is there once',
    async (where, size) => {
      fs = await mountTmpfs(96 * MiB);
      const dataDir = join(fs.dir, 'data');
      await mkdir(dataDir);
      warren = await spawnWarren(dataDir, ['--disk-free-limit', String(4 * MiB)]);
      const w = warren;
      const conn = await openConnection(w.url);
      conns.push(conn);
      let blocked = false;
      conn.on('blocked', () => (blocked = true));
      const ch = await openConfirmChannel(conn);
      await ch.assertQueue('full', { durable: true });
      const outcomes = new Map<number, Outcome>();
      const body = randomBytes(size); // incompressible
      // a few confirmed before the disk fills
      await Promise.all([1, 2, 3].map((n) => publish(ch, 'full', n, body, outcomes)));

      // something else fills the disk; the publisher goes on (a burst in flight, as unbounded producers are).
      // The disk monitor checks once a second: when its check lands between the fill and the
      // burst (a loaded machine), the alarm blocks the burst before any write fails, which is the
      // alarm doing its job; the disk is then freed, the held burst confirmed, and it is tried again.
      const writeFailed = (r: LogRecord): boolean => r.level >= 50 && r.msg.includes('write failed');
      const alarmSet = (r: LogRecord): boolean => r.msg === 'resource alarm set: blocking publishers';
      const alarmCleared = (r: LogRecord): boolean => r.msg === 'resource alarm cleared';
      let next = 4;
      let filler: string;
      let burst: Promise<Outcome>[];
      for (let attempt = 1; ; attempt++) {
        filler = fillDisk(fs.dir);
        burst = [];
        for (let i = 0; i < 16; i++) burst.push(publish(ch, 'full', next++, body, outcomes));
        const first = await Promise.race([logged(w, writeFailed).then(() => 'write failed'), loggedTimes(w, alarmSet, attempt).then(() => 'alarm')]);
        if (first === 'write failed') break;
        expect(attempt).toBeLessThan(5);
        unlinkSync(filler);
        await loggedTimes(w, alarmCleared, attempt);
        expect(await Promise.all(burst)).toEqual(burst.map(() => 'ack'));
      }
      await loggedTimes(w, alarmSet, 1);
      // the alarm holds the rest; what was accepted before it could not be written: nacked, never confirmed
      await new Promise<void>((resolve) => {
        const wait = (): void => {
          if ([...outcomes.values()].includes('nack')) resolve();
          else setTimeout(wait, 20);
        };
        wait();
      });

      // space comes back: no restart
      unlinkSync(filler);
      await Promise.all(burst);
      if (where === 'in LevelDB') await logged(w, (r) => r.msg.includes('database reopened after a failed write'));
      // confirms resume
      const after: Promise<Outcome>[] = [];
      const firstAfter = next;
      for (let i = 0; i < 5; i++) after.push(publish(ch, 'full', next++, body, outcomes));
      expect(await Promise.all(after)).toEqual(['ack', 'ack', 'ack', 'ack', 'ack']);
      // a durable declare succeeds
      const ch2 = await openChannel(conn);
      await ch2.assertQueue('declared-after', { durable: true });
      await ch2.close();
      expect(blocked).toBe(true);

      const acked = [...outcomes].filter(([, o]) => o === 'ack').map(([n]) => n);
      const nacked = [...outcomes].filter(([, o]) => o === 'nack').map(([n]) => n);
      expect(nacked.length).toBeGreaterThan(0);
      expect(acked.length + nacked.length).toBe(next - 1);
      expect(acked).toEqual(expect.arrayContaining([1, 2, 3, ...[0, 1, 2, 3, 4].map((i) => firstAfter + i)]));
      // every confirmed message is in the queue once; a nacked one may be (nack means "not known to be stored"), at most once
      const { messageCount } = await ch.checkQueue('full');
      expect(messageCount).toBeGreaterThanOrEqual(acked.length);
      const got = await consumeAll(conn, 'full', messageCount);
      const counts = new Map<number, number>();
      for (const m of got) counts.set(m.n, (counts.get(m.n) ?? 0) + 1);
      for (const n of acked) expect(counts.get(n), `confirmed message ${n}`).toBe(1);
      for (const [n, c] of counts) {
        expect(c, `message ${n}`).toBe(1);
        expect(outcomes.has(n), `message ${n} was published`).toBe(true);
      }
      expect(got.every((m) => m.size === size)).toBe(true);

      // and all of it survives a clean restart (the reopened store is the one that is closed)
      await ch.close();
      await conn.close();
      conns = [];
      expect(await w.terminate()).toBe(0);
      warren = await spawnWarren(dataDir, ['--disk-free-limit', String(4 * MiB)]);
      const conn2 = await openConnection(warren.url);
      conns.push(conn2);
      const ch3 = await openChannel(conn2);
      expect((await ch3.checkQueue('full')).messageCount).toBe(0);
      await ch3.checkQueue('declared-after');
    },
    TIMEOUT,
  );

  it(
    'transient messages paged to the spill while the disk is full stay in memory: none lost, in order',
    async () => {
      fs = await mountTmpfs(64 * MiB);
      const dataDir = join(fs.dir, 'data');
      await mkdir(dataDir);
      // a queue that keeps 20 messages in memory and pages the rest to the spill
      warren = await spawnWarren(dataDir, ['--disk-free-limit', '0', '--queue-memory-window', '20']);
      const w = warren;
      const conn = await openConnection(w.url);
      conns.push(conn);
      const ch = await openConfirmChannel(conn);
      await ch.assertQueue('paged', { durable: false });
      const filler = fillDisk(fs.dir);
      const outcomes = new Map<number, Outcome>();
      const body = randomBytes(256 * 1024);
      const sent: Promise<Outcome>[] = [];
      for (let n = 1; n <= 80; n++) sent.push(publish(ch, 'paged', n, body, outcomes, false));
      expect(new Set(await Promise.all(sent))).toEqual(new Set(['ack']));
      await logged(w, (r) => r.level >= 50 && r.msg.startsWith('spill: write failed'));
      unlinkSync(filler);
      const got = await consumeAll(conn, 'paged', 80);
      expect(got.map((m) => m.n)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
      expect(got.every((m) => m.size === body.length)).toBe(true);
    },
    TIMEOUT,
  );
});
