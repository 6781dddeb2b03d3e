import { EventEmitter } from 'node:events';
import { statfs } from 'node:fs/promises';
import { totalmem } from 'node:os';

export type AlarmResource = 'memory' | 'disk';

export interface AlarmEvent {
  readonly resource: AlarmResource;
  /** true: the alarm went on (publishers must be blocked); false: it cleared */
  readonly set: boolean;
}

export interface ResourceMonitorEvents {
  alarm: [AlarmEvent];
  /** a reader failed; the alarm state is left as it was (not 'error': nothing must throw) */
  'check-error': [Error];
}

/**
 * RabbitMQ's vm_memory_high_watermark: a number is relative (a fraction of the
 * machine's or cgroup's memory, vm_memory_high_watermark.relative); `{ absolute }`
 * is a byte count (vm_memory_high_watermark.absolute).
 */
export type MemoryHighWatermark = number | { readonly absolute: number };

export interface ResourceMonitorOptions {
  /** default 0.6, RabbitMQ's default since 3.13/4.0 (it was 0.4 before) */
  readonly memoryHighWatermark?: MemoryHighWatermark;
  /** bytes of free disk space below which the disk alarm is set; RabbitMQ default 50000000 */
  readonly diskFreeLimit?: number;
  /** the directory whose file system is watched; null = no disk monitoring (in-memory broker) */
  readonly dataDir?: string | null;
  /** check period; RabbitMQ checks memory every 1 s (memory_monitor_interval) */
  readonly intervalMs?: number;
  /** bytes in use; default process.memoryUsage.rss() */
  readonly readMemory?: () => number;
  /** bytes available to the broker on dataDir's file system; default fs.statfs(dataDir) */
  readonly readDiskFree?: () => Promise<number>;
  /** total memory the relative watermark is a fraction of; default the cgroup limit or os.totalmem() */
  readonly totalMemory?: number;
  /**
   * Bytes accepted for the disk and not yet written (the store's WriteMeter): they land
   * after publishers are blocked, so the disk alarm counts them as used, and the monitor
   * reads the disk again before that many more can be written.
   */
  readonly inFlight?: InFlightBytes | null;
  /** shortest time between two disk readings (near the limit); default 100 ms, RabbitMQ's min_check_interval */
  readonly minDiskIntervalMs?: number;
}

/** What the disk alarm needs from the store's write meter (store/write-meter.ts). */
export interface InFlightBytes {
  readonly pending: number;
  notifyAfter(bytes: number, listener: () => void): void;
  cancel(): void;
}

export const DEFAULT_MEMORY_HIGH_WATERMARK = 0.6;
export const DEFAULT_DISK_FREE_LIMIT = 50_000_000;
export const DEFAULT_MONITOR_INTERVAL_MS = 1000;
export const DEFAULT_MIN_DISK_INTERVAL_MS = 100;
/**
 * How fast a disk may fill, to time the next reading (RabbitMQ's rabbit_disk_monitor assumes
 * 250 MB/s too); a reading also comes after a quarter of the margin has been queued, whatever
 * the rate.
 */
const FAST_RATE_BYTES_PER_MS = 250_000;
/**
 * Each byte in flight may take twice its size before LevelDB frees anything: the write-ahead
 * log, then the table its memtable is flushed to (the log is deleted only after).
 */
export const IN_FLIGHT_FACTOR = 2;

/**
 * Memory and disk alarms, as RabbitMQ's vm_memory_monitor and rabbit_disk_monitor:
 * the memory alarm is on while used memory > the high watermark, the disk alarm while
 * free space < disk_free_limit, where the bytes in flight (accepted, not yet written, twice
 * over: see IN_FLIGHT_FACTOR) count as used. The disk is read again sooner the closer it
 * is to the limit (between minDiskIntervalMs and intervalMs, as RabbitMQ does), and also
 * as soon as a quarter of the margin has been queued for writing: large messages arriving
 * fast cannot fill the disk between two readings. Events fire on transitions only; the connection layer
 * blocks publishing connections while `blocked` (connection.blocked with
 * `blockedReason()`), and unblocks when every alarm has cleared.
 */
export class ResourceMonitor extends EventEmitter<ResourceMonitorEvents> {
  /** bytes of memory above which the memory alarm is set */
  readonly memoryLimit: number;
  readonly diskFreeLimit: number;
  readonly intervalMs: number;
  readonly minDiskIntervalMs: number;
  readonly #inFlight: InFlightBytes | null;
  #diskTimer: NodeJS.Timeout | null = null;
  readonly #readMemory: () => number;
  readonly #readDiskFree: (() => Promise<number>) | null;
  #memoryAlarm = false;
  #diskAlarm = false;
  #timer: NodeJS.Timeout | null = null;
  #diskCheck: Promise<void> | null = null;
  #lastMemory = 0;
  #lastDiskFree = Number.POSITIVE_INFINITY;

  constructor(options: ResourceMonitorOptions = {}) {
    super();
    const watermark = options.memoryHighWatermark ?? DEFAULT_MEMORY_HIGH_WATERMARK;
    if (typeof watermark === 'number') {
      if (!(watermark >= 0) || !Number.isFinite(watermark)) {
        throw new RangeError(`memory high watermark must be a fraction >= 0, got ${watermark}`);
      }
      this.memoryLimit = Math.floor(watermark * (options.totalMemory ?? availableMemory()));
    } else {
      if (!(watermark.absolute >= 0)) throw new RangeError(`absolute memory high watermark must be >= 0`);
      this.memoryLimit = watermark.absolute;
    }
    this.diskFreeLimit = options.diskFreeLimit ?? DEFAULT_DISK_FREE_LIMIT;
    this.intervalMs = options.intervalMs ?? DEFAULT_MONITOR_INTERVAL_MS;
    this.minDiskIntervalMs = Math.min(options.minDiskIntervalMs ?? DEFAULT_MIN_DISK_INTERVAL_MS, this.intervalMs);
    this.#inFlight = options.inFlight ?? null;
    this.#readMemory = options.readMemory ?? readRss;
    const dataDir = options.dataDir ?? null;
    this.#readDiskFree = options.readDiskFree ?? (dataDir === null ? null : () => readDiskFree(dataDir));
  }

  /** true while any alarm is set: publishing connections must be blocked */
  get blocked(): boolean {
    return this.#memoryAlarm || this.#diskAlarm;
  }

  get memoryAlarm(): boolean {
    return this.#memoryAlarm;
  }

  get diskAlarm(): boolean {
    return this.#diskAlarm;
  }

  /** last readings (for logs and management): bytes used, bytes free (Infinity when unknown) */
  get lastMemoryUsed(): number {
    return this.#lastMemory;
  }

  get lastDiskFree(): number {
    return this.#lastDiskFree;
  }

  /** the alarms that are set, as RabbitMQ words them one by one: "low on memory", "low on disk" */
  reasons(): string[] {
    const out: string[] = [];
    if (this.#memoryAlarm) out.push('low on memory');
    if (this.#diskAlarm) out.push('low on disk');
    return out;
  }

  /**
   * The connection.blocked reason text (RabbitMQ rabbit_reader:blocked_by_message):
   * "low on memory", "low on disk" or "low on memory & disk"; '' when not blocked.
   */
  blockedReason(): string {
    if (this.#memoryAlarm && this.#diskAlarm) return 'low on memory & disk';
    if (this.#memoryAlarm) return 'low on memory';
    if (this.#diskAlarm) return 'low on disk';
    return '';
  }

  /** checks now, then every intervalMs; the timer never keeps the process alive */
  start(): void {
    if (this.#timer !== null) return;
    this.#tick();
    this.#timer = setInterval(this.#tick, this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    if (this.#diskTimer !== null) clearTimeout(this.#diskTimer);
    this.#diskTimer = null;
    this.#inFlight?.cancel();
  }

  /**
   * One check of both resources; resolves when the disk reading (if any) is in and
   * events have been emitted. A disk read still running is joined, not duplicated.
   */
  checkNow(): Promise<void> {
    this.#checkMemory();
    return this.#checkDisk();
  }

  readonly #tick = (): void => {
    // an alarm listener that throws must not escape the timer (nor leave a rejected promise)
    try {
      this.checkNow().catch((error: unknown) => this.#reportError(error));
    } catch (error) {
      this.#reportError(error);
    }
  };

  /** the adaptive disk timer, or the write meter: a disk reading now (never throws) */
  readonly #diskTick = (): void => {
    this.#diskTimer = null;
    try {
      this.#checkDisk().catch((error: unknown) => this.#reportError(error));
    } catch (error) {
      this.#reportError(error);
    }
  };

  /**
   * After a reading: the next one in proportion to the margin left (RabbitMQ's interval),
   * and at the latest when a quarter of the margin has been queued for writing.
   */
  #scheduleDisk(margin: number): void {
    if (this.#timer === null) return;
    if (this.#diskTimer !== null) clearTimeout(this.#diskTimer);
    const delay = Math.min(this.intervalMs, Math.max(this.minDiskIntervalMs, margin / FAST_RATE_BYTES_PER_MS));
    if (delay < this.intervalMs) {
      this.#diskTimer = setTimeout(this.#diskTick, delay);
      this.#diskTimer.unref();
    }
    this.#inFlight?.notifyAfter(Math.max(0, margin) / 4, this.#diskTick);
  }

  #reportError(error: unknown): void {
    try {
      this.emit('check-error', asError(error));
    } catch {
      // a check-error listener that throws: nothing left to tell
    }
  }

  #checkMemory(): void {
    let used: number;
    try {
      used = this.#readMemory();
    } catch (error) {
      this.emit('check-error', asError(error));
      return;
    }
    this.#lastMemory = used;
    // RabbitMQ vm_memory_monitor: alarmed when used > limit
    this.#setAlarm('memory', used > this.memoryLimit);
  }

  #checkDisk(): Promise<void> {
    const read = this.#readDiskFree;
    if (read === null) return Promise.resolve();
    if (this.#diskCheck !== null) return this.#diskCheck;
    const check = read().then(
      (free) => {
        this.#diskCheck = null;
        this.#lastDiskFree = free;
        // RabbitMQ rabbit_disk_monitor: alarmed when free < limit; here what is in flight is used already
        const margin = free - IN_FLIGHT_FACTOR * (this.#inFlight?.pending ?? 0) - this.diskFreeLimit;
        this.#scheduleDisk(margin);
        this.#setAlarm('disk', margin < 0);
      },
      (error: unknown) => {
        this.#diskCheck = null;
        this.emit('check-error', asError(error));
      },
    );
    this.#diskCheck = check;
    return check;
  }

  #setAlarm(resource: AlarmResource, set: boolean): void {
    if (resource === 'memory') {
      if (this.#memoryAlarm === set) return;
      this.#memoryAlarm = set;
    } else {
      if (this.#diskAlarm === set) return;
      this.#diskAlarm = set;
    }
    this.emit('alarm', { resource, set });
  }
}

function readRss(): number {
  return process.memoryUsage.rss();
}

async function readDiskFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  // blocks available to an unprivileged user, as df reports (RabbitMQ reads df)
  return s.bavail * s.bsize;
}

/** RabbitMQ honours a cgroup memory limit when it is below the machine's memory. */
export function availableMemory(): number {
  const total = totalmem();
  const constrained = process.constrainedMemory?.() ?? 0;
  return constrained > 0 && constrained < total ? constrained : total;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
