/** Told when the store has caught up with what it was handed (flow control lifts). */
export interface FlowWaiter {
  flowRelieved(): void;
}

export interface WriteBehindLimits {
  /** bytes in the durable log's open and in-flight batches above which writers are held */
  readonly durableHigh: number;
  /** ... and below which they go on */
  readonly durableLow: number;
  /**
   * operations (keys set) in those batches above which writers are held, and below which
   * they go on (default: no such bound). A batch's write time grows with its operations as
   * well as its bytes: many small messages cost LevelDB more per byte than a few big ones.
   */
  readonly durableOpsHigh?: number;
  readonly durableOpsLow?: number;
  /** bytes handed to the spill and not yet written, above which writers are held */
  readonly spillHigh: number;
  readonly spillLow: number;
}

const MiB = 1024 * 1024;

/**
 * The durable bound is what one persistent publish on another queue may wait behind: a
 * commit takes the whole open batch, so a confirm waits for the batch in flight and then for
 * its own, each up to the bound. A batch's write time grows with its bytes and with its
 * operations (each a LevelDB memtable insert and index entry), so both are bounded.
 *
 * Operations: at the 20-40 MB/s LevelDB sustains for small messages on the bench machine,
 * 32 MiB of 1 KiB messages (the first bound) was about 1.4 s of another queue's confirms
 * behind a flood (bench scenario `flood`, issue #9), 4 MiB ~100-150 ms per batch, 1 MiB
 * (about 1,700 operations: a 1 KiB message is a body and an index entry) ~25-50 ms; with
 * the larger memtable (level-store.ts WRITE_BUFFER_SIZE) the bystander's longest wait went
 * from ~700 to ~100 ms. 2,048 operations keeps that batch size for 1 KiB messages and is
 * still a thousand small messages per fsync.
 *
 * Bytes: big bodies are few operations per byte, and the disk writes them at a few hundred
 * MB/s; a 1 MiB bound made 64 KiB messages 16 per fsync, and a flood of them (a backlog on
 * disk) spent the store's time in fsyncs of ~400 KiB batches. 4 MiB: ~1.2 MiB batches,
 * published +51 % (median of 3 A/B runs against 1 MiB, flood with 64 KiB bodies, busy
 * machine), the bystander's longest wait 100-107 ms instead of 45-56 ms (RabbitMQ's:
 * 144-205 ms in the suite's flood-64k).
 * Publishers that confirm hold far less than either in flight (a confirm window of 256
 * small messages is ~40 KB, 512 operations).
 */
export const DEFAULT_WRITE_BEHIND: WriteBehindLimits = {
  durableHigh: 4 * MiB,
  durableLow: 2 * MiB,
  durableOpsHigh: 2048,
  durableOpsLow: 1024,
  spillHigh: 64 * MiB,
  spillLow: 32 * MiB,
};

/**
 * What the store has been handed and not yet written: the durable log's batches and the
 * spill's pending chunks. Both drain by themselves (the disk writes them), whatever clients
 * do, so holding publishers on this never deadlocks a connection that also consumes: it is
 * the broker's own write-behind, never consumer progress. Above a high mark the store is
 * `saturated` (publishers that write to it are held at their sockets, RabbitMQ's `flow`);
 * below the low mark the waiters are told, once, on a later tick.
 */
export class WriteBehind {
  saturated = false;
  private durable = 0;
  private durableOps = 0;
  private spill = 0;
  private readonly waiters = new Set<FlowWaiter>();

  constructor(readonly limits: WriteBehindLimits = DEFAULT_WRITE_BEHIND) {}

  get durableBytes(): number {
    return this.durable;
  }

  get spillBytes(): number {
    return this.spill;
  }

  /** bytes and operations in the durable log's open and in-flight batches */
  durableBacklog(bytes: number, ops = 0): void {
    this.durable = bytes;
    this.durableOps = ops;
    this.update();
  }

  spillBacklog(bytes: number): void {
    this.spill = bytes;
    this.update();
  }

  /** `waiter` is told once when the store is no longer saturated (at once if it is not now). */
  waitForRelief(waiter: FlowWaiter): void {
    if (!this.saturated) {
      process.nextTick(relieve, waiter);
      return;
    }
    this.waiters.add(waiter);
  }

  /** a waiter that went away (its connection closed) */
  cancel(waiter: FlowWaiter): void {
    this.waiters.delete(waiter);
  }

  private update(): void {
    const l = this.limits;
    if (!this.saturated) {
      if (this.durable > l.durableHigh || this.durableOps > (l.durableOpsHigh ?? Infinity) || this.spill > l.spillHigh) this.saturated = true;
      return;
    }
    if (this.durable > l.durableLow || this.durableOps > (l.durableOpsLow ?? Infinity) || this.spill > l.spillLow) return;
    this.saturated = false;
    // told on a later tick, never from inside the call that relieved the store: that call
    // can be a queue's delivery pass (a no-ack delivery cancels its message's write), and
    // a publisher resumed there published into the queue in the middle of the pass, its
    // message handed out before the one the pass was delivering (seen as two messages of
    // one producer delivered out of order)
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) process.nextTick(relieve, w);
  }
}

function relieve(waiter: FlowWaiter): void {
  try {
    waiter.flowRelieved();
  } catch {
    // a waiter's own failure is its own (connections contain theirs)
  }
}
