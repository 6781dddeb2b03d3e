// Bad input never crashes the broker nor trips an internal error: seeded damaged sessions
// and seeded content headers of random structure (see fuzz-engine.ts) against a running
// broker, in memory and with a data dir. The run fails on anything that shows an internal
// error — an error-level log line, a 541 other than RabbitMQ's answer to undecodable
// properties, an exception escaping to the event loop, an answer other than the expected
// one to a structured session — not only on a crash. A planted internal error shows that
// the fuzzer sees it.
//
// CI runs a short pass; `npm run fuzz -- --sessions 100000` runs a long one
// (WARREN_FUZZ_SESSIONS, WARREN_FUZZ_FIRST_SEED, WARREN_FUZZ_CONCURRENCY).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/index.js';
import { Queue } from '../../src/queue/queue.js';
import { Vhost } from '../../src/vhost/vhost.js';
import { LogCapture } from '../robustness/log-capture.js';
import { runFuzz, type FuzzReport } from './fuzz-engine.js';

const SESSIONS = Number(process.env.WARREN_FUZZ_SESSIONS ?? 800);
const FIRST_SEED = Number(process.env.WARREN_FUZZ_FIRST_SEED ?? 1);
const CONCURRENCY = Number(process.env.WARREN_FUZZ_CONCURRENCY ?? 4);
const LONG_RUN = process.env.WARREN_FUZZ_SESSIONS !== undefined;
/** generous: a loaded 2-core machine runs a few hundred sessions a second */
const TIMEOUT = Math.max(120_000, SESSIONS * 50);

const escaped: unknown[] = [];
const onEscape = (e: unknown): void => {
  escaped.push(e);
};
beforeAll(() => {
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
});
afterAll(() => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
});

function summary(report: FuzzReport): string {
  const shown = report.findings.slice(0, 20).map((f) => `seed ${f.seed ?? '?'}: ${f.kind}: ${f.detail}`);
  return `${report.findings.length} findings in ${report.sessions} sessions${shown.length ? `:\n${shown.join('\n')}` : ''}`;
}

async function withBroker<T>(onDisk: boolean, fn: (broker: RunningBroker, log: LogCapture) => Promise<T>): Promise<T> {
  // warnings and errors only: a long run opens hundreds of thousands of connections
  const log = new LogCapture('warn');
  const dataDir = onDisk ? await mkdtemp(join(tmpdir(), 'warren-fuzz-')) : null;
  const broker = await startBroker({ port: 0, dataDir, logger: log.logger });
  try {
    return await fn(broker, log);
  } finally {
    await broker.close();
    if (dataDir !== null) await rm(dataDir, { recursive: true, force: true });
  }
}

describe.each([
  ['in memory', false],
  ['with a data dir (LevelDB)', true],
])('malformed input never takes the broker down nor trips an internal error (%s)', (_name, onDisk) => {
  it(`${SESSIONS} seeded sessions, damaged and structured, with a healthy client served in between`, async () => {
    const report = await withBroker(onDisk, (broker, log) =>
      runFuzz({
        url: broker.url,
        log,
        first: FIRST_SEED,
        sessions: SESSIONS,
        concurrency: CONCURRENCY,
        escaped,
        onProgress: LONG_RUN ? (done, findings) => console.log(`fuzz (${_name}): ${done}/${SESSIONS} sessions, ${findings} findings`) : undefined,
      }),
    );
    if (LONG_RUN) console.log(`fuzz (${_name}): structured outcomes ${JSON.stringify(report.outcomes)}`);
    expect(report.findings, summary(report)).toEqual([]);
    // the structured sessions reached every kind of answer
    const kinds = Object.keys(report.outcomes).join(' ');
    for (const k of ['delivered', 'connection.close 541', 'channel.close 406']) expect(kinds).toContain(k);
  }, TIMEOUT);
});

describe('the fuzzer sees internal errors', () => {
  it('a planted exception on the publish path (541 sent, error logged) is a finding', async () => {
    const report = await withBroker(false, async (broker, log) => {
      let calls = 0;
      const real = Vhost.prototype.route;
      vi.spyOn(Vhost.prototype, 'route').mockImplementation(function (this: Vhost, ...args: Parameters<Vhost['route']>) {
        if (++calls % 7 === 0) throw new Error('planted internal error');
        return real.apply(this, args);
      });
      try {
        return await runFuzz({ url: broker.url, log, sessions: 60, escaped });
      } finally {
        vi.restoreAllMocks();
      }
    });
    const kinds = new Set(report.findings.map((f) => f.kind));
    expect(kinds.has('541'), summary(report)).toBe(true);
    expect(kinds.has('error log'), summary(report)).toBe(true);
    expect(report.findings.find((f) => f.kind === 'error log')!.detail).toContain('planted internal error');
  });

  it('a planted exception in a deferred callback (contained: no 541, only an error log) is a finding', async () => {
    const report = await withBroker(false, async (broker, log) => {
      // the queue's delivery pass runs from setImmediate; the damaged sessions consume
      vi.spyOn(Queue.prototype as unknown as { deliveryPass(): void }, 'deliveryPass').mockImplementation(() => {
        throw new Error('planted callback error');
      });
      try {
        return await runFuzz({ url: broker.url, log, sessions: 60, escaped });
      } finally {
        vi.restoreAllMocks();
      }
    });
    const planted = report.findings.filter((f) => f.detail.includes('planted callback error'));
    expect(planted.length, summary(report)).toBeGreaterThan(0);
    expect(new Set(planted.map((f) => f.kind))).toEqual(new Set(['error log']));
  });
});
