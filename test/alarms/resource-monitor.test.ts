import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type AlarmEvent,
  DEFAULT_DISK_FREE_LIMIT,
  ResourceMonitor,
} from '../../src/alarms/resource-monitor.js';
import { WriteMeter } from '../../src/store/write-meter.js';

const MB = 1_000_000;

/** a monitor with mutable fake readings */
function fixture(options: { memoryHighWatermark?: number | { absolute: number }; totalMemory?: number; diskFreeLimit?: number } = {}) {
  const readings = { memory: 0, diskFree: 1000 * MB };
  const monitor = new ResourceMonitor({
    memoryHighWatermark: options.memoryHighWatermark ?? { absolute: 100 * MB },
    totalMemory: options.totalMemory,
    diskFreeLimit: options.diskFreeLimit,
    dataDir: null,
    readMemory: () => readings.memory,
    readDiskFree: () => Promise.resolve(readings.diskFree),
  });
  const events: AlarmEvent[] = [];
  monitor.on('alarm', (e) => events.push(e));
  return { monitor, readings, events };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ResourceMonitor', () => {
  it('sets and clears the memory alarm on transitions only (used > watermark)', async () => {
    const { monitor, readings, events } = fixture();
    readings.memory = 100 * MB; // equal to the limit: not over it
    await monitor.checkNow();
    expect(monitor.blocked).toBe(false);
    expect(events).toEqual([]);

    readings.memory = 100 * MB + 1;
    await monitor.checkNow();
    await monitor.checkNow();
    expect(events).toEqual([{ resource: 'memory', set: true }]);
    expect(monitor.blocked).toBe(true);
    expect(monitor.memoryAlarm).toBe(true);
    expect(monitor.reasons()).toEqual(['low on memory']);
    expect(monitor.blockedReason()).toBe('low on memory');

    readings.memory = 10 * MB;
    await monitor.checkNow();
    await monitor.checkNow();
    expect(events).toEqual([{ resource: 'memory', set: true }, { resource: 'memory', set: false }]);
    expect(monitor.blocked).toBe(false);
    expect(monitor.reasons()).toEqual([]);
    expect(monitor.blockedReason()).toBe('');
  });

  it('sets and clears the disk alarm (free < limit), default limit 50 MB', async () => {
    const { monitor, readings, events } = fixture();
    expect(monitor.diskFreeLimit).toBe(DEFAULT_DISK_FREE_LIMIT);
    readings.diskFree = DEFAULT_DISK_FREE_LIMIT; // not below
    await monitor.checkNow();
    expect(events).toEqual([]);
    readings.diskFree = DEFAULT_DISK_FREE_LIMIT - 1;
    await monitor.checkNow();
    expect(events).toEqual([{ resource: 'disk', set: true }]);
    expect(monitor.diskAlarm).toBe(true);
    expect(monitor.lastDiskFree).toBe(DEFAULT_DISK_FREE_LIMIT - 1);
    expect(monitor.reasons()).toEqual(['low on disk']);
    expect(monitor.blockedReason()).toBe('low on disk');
    readings.diskFree = 2 * DEFAULT_DISK_FREE_LIMIT;
    await monitor.checkNow();
    expect(events).toEqual([{ resource: 'disk', set: true }, { resource: 'disk', set: false }]);
    expect(monitor.blocked).toBe(false);
  });

  it('stays blocked until both alarms have cleared; combined reason as RabbitMQ words it', async () => {
    const { monitor, readings, events } = fixture();
    readings.memory = 200 * MB;
    readings.diskFree = 1;
    await monitor.checkNow();
    expect(events).toEqual([{ resource: 'memory', set: true }, { resource: 'disk', set: true }]);
    expect(monitor.reasons()).toEqual(['low on memory', 'low on disk']);
    expect(monitor.blockedReason()).toBe('low on memory & disk');
    readings.memory = 0;
    await monitor.checkNow();
    expect(monitor.blocked).toBe(true);
    expect(monitor.blockedReason()).toBe('low on disk');
    readings.diskFree = 1000 * MB;
    await monitor.checkNow();
    expect(monitor.blocked).toBe(false);
  });

  it('a relative watermark is a fraction of total memory', async () => {
    const { monitor, readings, events } = fixture({ memoryHighWatermark: 0.4, totalMemory: 1000 * MB });
    expect(monitor.memoryLimit).toBe(400 * MB);
    readings.memory = 401 * MB;
    await monitor.checkNow();
    expect(events).toEqual([{ resource: 'memory', set: true }]);
  });

  it('defaults: 0.6 of total memory; watermark 0 blocks everything (RabbitMQ)', async () => {
    expect(new ResourceMonitor({ totalMemory: 1000, dataDir: null }).memoryLimit).toBe(600);
    const { monitor, readings } = fixture({ memoryHighWatermark: 0, totalMemory: 1000 * MB });
    readings.memory = 1;
    await monitor.checkNow();
    expect(monitor.blocked).toBe(true);
    expect(() => new ResourceMonitor({ memoryHighWatermark: -1 })).toThrow(RangeError);
  });

  it('without a dataDir nor a disk reader there is no disk alarm', async () => {
    const monitor = new ResourceMonitor({ dataDir: null, readMemory: () => 0, diskFreeLimit: Number.MAX_SAFE_INTEGER });
    await monitor.checkNow();
    expect(monitor.diskAlarm).toBe(false);
  });

  it('reads the real file system free space when given a dataDir', async () => {
    const monitor = new ResourceMonitor({ dataDir: tmpdir(), readMemory: () => 0, diskFreeLimit: Number.MAX_SAFE_INTEGER });
    const events: AlarmEvent[] = [];
    monitor.on('alarm', (e) => events.push(e));
    await monitor.checkNow();
    expect(monitor.lastDiskFree).toBeGreaterThan(0);
    expect(Number.isFinite(monitor.lastDiskFree)).toBe(true);
    expect(events).toEqual([{ resource: 'disk', set: true }]);
  });

  it('a slow disk read is joined, not duplicated', async () => {
    let calls = 0;
    let resolve: (free: number) => void = () => {};
    const monitor = new ResourceMonitor({
      dataDir: null,
      readMemory: () => 0,
      readDiskFree: () => {
        calls++;
        return new Promise<number>((r) => {
          resolve = r;
        });
      },
    });
    const first = monitor.checkNow();
    const second = monitor.checkNow();
    expect(calls).toBe(1);
    resolve(1);
    await Promise.all([first, second]);
    expect(monitor.diskAlarm).toBe(true);
    // once settled, the next check reads again
    const third = monitor.checkNow();
    expect(calls).toBe(2);
    resolve(1e12);
    await third;
    expect(monitor.diskAlarm).toBe(false);
  });

  it('a failing reader emits check-error and leaves the alarm state as it was', async () => {
    let fail = false;
    const monitor = new ResourceMonitor({
      memoryHighWatermark: { absolute: 10 },
      dataDir: null,
      readMemory: () => {
        if (fail) throw new Error('no memory reading');
        return 20;
      },
      readDiskFree: () => (fail ? Promise.reject(new Error('statfs failed')) : Promise.resolve(1e12)),
    });
    const errors: string[] = [];
    monitor.on('check-error', (e) => errors.push(e.message));
    await monitor.checkNow();
    expect(monitor.memoryAlarm).toBe(true);
    fail = true;
    await monitor.checkNow();
    expect(errors).toEqual(['no memory reading', 'statfs failed']);
    expect(monitor.memoryAlarm).toBe(true);
    expect(monitor.diskAlarm).toBe(false);
  });

  it('start() checks at once and then every intervalMs with an unref\'d timer; stop() ends it', async () => {
    vi.useFakeTimers();
    let reads = 0;
    const monitor = new ResourceMonitor({
      dataDir: null,
      intervalMs: 1000,
      readMemory: () => {
        reads++;
        return 0;
      },
    });
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    monitor.start();
    monitor.start(); // idempotent
    expect(reads).toBe(1);
    expect(setIntervalSpy).toHaveBeenCalledTimes(1);
    const timer = setIntervalSpy.mock.results[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    await vi.advanceTimersByTimeAsync(3000);
    expect(reads).toBe(4);
    monitor.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(reads).toBe(4);
    setIntervalSpy.mockRestore();
  });

  it('bytes in flight count as used, twice over (log, then table), and queueing a quarter of the margin triggers a reading', async () => {
    const meter = new WriteMeter();
    let reads = 0;
    let free = 200 * MB;
    const monitor = new ResourceMonitor({
      dataDir: null,
      diskFreeLimit: 50 * MB,
      readMemory: () => 0,
      readDiskFree: () => {
        reads++;
        return Promise.resolve(free);
      },
      inFlight: meter,
    });
    const events: AlarmEvent[] = [];
    monitor.on('alarm', (e) => events.push(e));
    monitor.start();
    await monitor.checkNow();
    expect(monitor.diskAlarm).toBe(false);
    const before = reads;
    // margin 150 MB: 37.5 MB queued (not yet written, not yet seen by statfs) brings a reading at once
    meter.queued(37 * MB);
    expect(reads).toBe(before);
    meter.queued(1 * MB);
    expect(reads).toBe(before + 1);
    await monitor.checkNow();
    // 200 MB free, 38 MB in flight: 200 - 76 >= 50, no alarm yet; 80 MB in flight: 200 - 160 < 50
    expect(monitor.diskAlarm).toBe(false);
    meter.queued(42 * MB);
    await monitor.checkNow();
    expect(monitor.diskAlarm).toBe(true);
    // the batch is written: statfs now sees it, nothing is in flight any more
    meter.written(80 * MB);
    free = 120 * MB;
    await monitor.checkNow();
    expect(monitor.diskAlarm).toBe(false);
    expect(events).toEqual([
      { resource: 'disk', set: true },
      { resource: 'disk', set: false },
    ]);
    monitor.stop();
  });

  it('reads the disk more often near the limit (never more often than every 100 ms), with unref\'d timers', async () => {
    vi.useFakeTimers();
    let reads = 0;
    let free = 10_000 * MB;
    const monitor = new ResourceMonitor({
      dataDir: null,
      diskFreeLimit: 50 * MB,
      intervalMs: 1000,
      readMemory: () => 0,
      readDiskFree: () => {
        reads++;
        return Promise.resolve(free);
      },
    });
    monitor.start();
    await vi.advanceTimersByTimeAsync(10_000);
    // far from the limit: once a second
    expect(reads).toBeGreaterThanOrEqual(10);
    expect(reads).toBeLessThanOrEqual(12);
    free = 60 * MB;
    await vi.advanceTimersByTimeAsync(1000);
    reads = 0;
    await vi.advanceTimersByTimeAsync(10_000);
    // 10 MB above the limit: every 100 ms
    expect(reads).toBeGreaterThanOrEqual(95);
    expect(reads).toBeLessThanOrEqual(115);
    monitor.stop();
    reads = 0;
    await vi.advanceTimersByTimeAsync(5000);
    expect(reads).toBe(0);
  });
});
