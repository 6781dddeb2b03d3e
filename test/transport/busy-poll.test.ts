import { describe, expect, it } from 'vitest';
import { connect } from 'amqplib';
import { Broker } from '../../src/broker.js';
import { resolveConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logging/logger.js';
import { BusyPoll } from '../../src/transport/busy-poll.js';

describe('busy polling after socket reads', () => {
  it('is off with a window of 0: a read never starts a spin', () => {
    const poll = new BusyPoll(0);
    poll.noteActivity();
    expect(poll.active).toBe(false);
    expect(poll.spins).toBe(0);
  });

  it('keeps the event loop turning for the window, then lets it sleep; reads inside the window extend the same spin', async () => {
    // a window far longer than a turn of the loop, even on a loaded machine: the turns below stay in one spin
    const poll = new BusyPoll(200_000);
    poll.noteActivity();
    expect(poll.active).toBe(true);
    // the loop is not blocked: other callbacks run while it spins, and further reads join the spin
    let turns = 0;
    await new Promise<void>((resolve) => {
      const turn = (): void => {
        poll.noteActivity();
        if (++turns < 10) setImmediate(turn);
        else resolve();
      };
      setImmediate(turn);
    });
    expect(poll.active).toBe(true);
    expect(poll.spins).toBe(1);
    await poll.whenIdle();
    expect(poll.active).toBe(false);
    // the next read starts a new spin
    poll.noteActivity();
    expect(poll.spins).toBe(2);
    await poll.whenIdle();
  });

  it('stop() ends a spin at once, however long its window', async () => {
    const poll = new BusyPoll(600_000_000); // ten minutes: the test times out unless stop() works
    poll.noteActivity();
    poll.stop();
    await poll.whenIdle();
    expect(poll.active).toBe(false);
  });

  it('a broker spins after its connections\' reads, with the configured window, and closing it ends the spin', async () => {
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: null, logLevel: 'silent', managementPort: null, metricsPort: null, busyPoll: 600_000_000 });
    const broker = new Broker(config, createLogger('silent'));
    const running = await broker.start();
    const conn = await connect(running.url);
    try {
      expect(broker.busyPoll.spins).toBeGreaterThan(0);
      expect(broker.busyPoll.active).toBe(true);
    } finally {
      await conn.close().catch(() => {});
      await running.close();
    }
    await broker.busyPoll.whenIdle();
    expect(broker.busyPoll.active).toBe(false);
  });

  it('a broker with --busy-poll 0 never spins', async () => {
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: null, logLevel: 'silent', managementPort: null, metricsPort: null, busyPoll: 0 });
    const broker = new Broker(config, createLogger('silent'));
    const running = await broker.start();
    const conn = await connect(running.url);
    const ch = await conn.createChannel();
    await ch.assertQueue('', { exclusive: true });
    await conn.close();
    await running.close();
    expect(broker.busyPoll.spins).toBe(0);
  });
});
