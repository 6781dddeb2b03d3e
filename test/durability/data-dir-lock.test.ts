import { describe, expect, it } from 'vitest';
import { childBrokerFixture, openConfirmChannel, runWarrenExpectingExit, TEST_TIMEOUT } from './harness.js';

describe('one Warren per data directory', () => {
  const broker = childBrokerFixture();

  it('a second Warren on the same data dir exits non-zero saying the directory is in use; the first keeps working', async () => {
    const warren = await broker.start();
    const dataDir = broker.dataDir;
    const conn = await broker.connect();
    const ch = await openConfirmChannel(conn);
    await ch.assertQueue('lock.q', { durable: true });
    ch.sendToQueue('lock.q', Buffer.from('before'), { persistent: true });
    await ch.waitForConfirms();

    const second = await runWarrenExpectingExit(dataDir);
    expect(second.signal).toBeNull();
    expect(second.code).not.toBe(0);
    const messages = second.output.map((line) => (line.startsWith('{') ? String((JSON.parse(line) as { msg?: unknown }).msg) : line));
    expect(messages).not.toContain('Warren listening');
    // the log line itself (not only a nested LevelDB cause) names the directory and says why
    expect(messages.some((m) => m.includes(dataDir) && /in use/i.test(m))).toBe(true);

    // The first broker still accepts and stores work on its (still locked) directory.
    ch.sendToQueue('lock.q', Buffer.from('after'), { persistent: true });
    await ch.waitForConfirms();
    const bodies: string[] = [];
    for (let m = await ch.get('lock.q', { noAck: true }); m !== false; m = await ch.get('lock.q', { noAck: true })) {
      bodies.push(m.content.toString());
    }
    expect(bodies).toEqual(['before', 'after']);
    const other = await broker.connect();
    expect(warren.process.exitCode).toBeNull();
  }, TEST_TIMEOUT);
});
