// The durable log's write aside (DurableLog.writeAside), which the background deletion of a
// deleted or purged queue writes its chunks with: it goes after every operation queued
// before it and ahead of those queued after it, so that a commit of other queues waits for
// at most that one write, never for a queue of deletion chunks.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { DurableLog, type DurableLogHost } from '../../src/store/durable-log.js';
import type { BatchOp } from '../../src/store/native-batch.js';
import { WriteMeter } from '../../src/store/write-meter.js';

interface Write {
  readonly keys: string[];
  readonly sync: boolean;
  done(error?: Error): void;
}

/** A durable log whose writes wait until the test completes them, in the order they were started. */
function heldLog(): { log: DurableLog; writes: Write[]; next: () => Promise<Write> } {
  const writes: Write[] = [];
  let wake: (() => void) | null = null;
  const host: DurableLogHost = {
    writeBatch(ops: readonly BatchOp[], options: { sync: boolean }): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        writes.push({ keys: ops.map((op) => `${op.type} ${op.key.toString('latin1')}`), sync: options.sync, done: (error) => (error === undefined ? resolve() : reject(error)) });
        wake?.();
      });
    },
    backlogChanged: () => {},
    meter: new WriteMeter(),
    backlogHigh: 1 << 30,
    partsFrom: Infinity,
    syncMark: { type: 'put', key: Buffer.from('mark', 'latin1'), value: Buffer.from('1') },
    backlogOpsHigh: 1 << 30,
  };
  const log = new DurableLog(host, createLogger('silent'));
  log.start();
  let taken = 0;
  const next = async (): Promise<Write> => {
    while (writes.length <= taken) await new Promise<void>((resolve) => (wake = resolve));
    return writes[taken++]!;
  };
  return { log, writes, next };
}

const del = (k: string): BatchOp => ({ type: 'del', key: Buffer.from(k, 'latin1') });
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('DurableLog.writeAside', () => {
  it('goes once the batch holding what was queued before it is written, unsynced', async () => {
    const { log, writes, next } = heldLog();
    log.set('a', Buffer.from('1'));
    const aside = log.writeAside([del('x'), del('y')]);
    log.set('b', Buffer.from('2')); // same open batch, not yet started: goes with 'a'
    const first = await next();
    expect(first.keys).toEqual(['put a', 'put b']); // the open batch took both (one group commit)
    expect(first.sync).toBe(false); // no one waits for it
    first.done();
    const second = await next();
    expect(second).toMatchObject({ keys: ['del x', 'del y'], sync: false });
    second.done();
    await aside;
    await tick();
    expect(writes).toHaveLength(2);
  });

  it('a commit that comes while it is written waits for it, then goes', async () => {
    const { log, writes, next } = heldLog();
    const aside = log.writeAside([del('x')]);
    const asideWrite = await next(); // nothing queued before it: at once
    expect(asideWrite.keys).toEqual(['del x']);
    let committed = false;
    log.set('a', Buffer.from('1'));
    log.afterCommit({ batchCommitted: () => (committed = true) });
    await tick();
    await tick();
    expect(writes).toHaveLength(1); // the commit waits for the write aside in flight
    asideWrite.done();
    await aside;
    const commit = await next();
    expect(commit).toMatchObject({ keys: ['put a'], sync: true });
    commit.done();
    await log.flush();
    expect(committed).toBe(true);
  });

  it('waits for a commit in flight, and goes before the operations queued meanwhile', async () => {
    const { log, next } = heldLog();
    log.set('a', Buffer.from('1'));
    const first = await next();
    const aside = log.writeAside([del('x')]); // queued after 'a' (in flight), before 'b'
    log.set('b', Buffer.from('2'));
    first.done();
    const second = await next();
    expect(second.keys).toEqual(['del x']);
    second.done();
    await aside;
    const third = await next();
    expect(third.keys).toEqual(['put b']);
    third.done();
    // no one waited for 'b': a flush syncs with a write of the host's mark
    const flushed = log.flush();
    (await next()).done();
    await flushed;
  });

  it('a failed write rejects (the caller retries); one waiting at close is rejected, and close waits for one in flight', async () => {
    const { log, next } = heldLog();
    const failing = log.writeAside([del('x')]);
    (await next()).done(new Error('disk full'));
    await expect(failing).rejects.toThrow('disk full');

    const inFlight = log.writeAside([del('y')]);
    const w = await next();
    let closed = false;
    const closing = log.close().then(() => (closed = true));
    await tick();
    expect(closed).toBe(false);
    w.done();
    await inFlight;
    await closing;

    const { log: other, next: otherNext } = heldLog();
    other.set('a', Buffer.from('1'));
    const held = await otherNext();
    const waiting = other.writeAside([del('z')]);
    const otherClosing = other.close();
    await expect(waiting).rejects.toThrow(/closed/);
    held.done();
    // 'a' went unsynced (no one waited for it when it started): the close syncs
    const mark = await otherNext();
    expect(mark).toMatchObject({ keys: ['put mark'], sync: true });
    mark.done();
    await otherClosing;
  });
});

describe('DurableLog: which commits are synced', () => {
  it('a batch someone waits for is synced, one no one waits for is not, and the close syncs what it writes', async () => {
    const { log, next } = heldLog();
    log.set('a', Buffer.from('1')); // a publish without confirms, an ack
    const first = await next();
    expect(first).toMatchObject({ keys: ['put a'], sync: false });
    first.done();
    await tick();
    expect(log.unsynced).toBe(true);

    // a flush with nothing queued still makes what came before durable
    const flushed = log.flush();
    const mark = await next();
    expect(mark).toMatchObject({ keys: ['put mark'], sync: true });
    mark.done();
    await flushed;
    expect(log.unsynced).toBe(false);
    const nothing = log.flush(); // all synced already: nothing is written
    await nothing;

    log.set('a2', Buffer.from('1'));
    const again = await next();
    expect(again).toMatchObject({ keys: ['put a2'], sync: false });
    again.done();
    await tick();

    log.set('b', Buffer.from('2'));
    let committed = false;
    log.afterCommit({ batchCommitted: () => (committed = true) }); // a confirm, a declare-ok
    const second = await next();
    expect(second).toMatchObject({ keys: ['put b'], sync: true });
    second.done();
    await tick();
    expect(committed).toBe(true);
    expect(log.unsynced).toBe(false);

    log.set('c', Buffer.from('3'));
    const closed = log.close();
    const last = await next();
    expect(last).toMatchObject({ keys: ['put c'], sync: true });
    last.done();
    await closed;
  });
});
