/**
 * Busy polling after socket reads. A broker that goes to sleep in epoll the moment it has
 * answered pays a wake-up when the answer to its answer arrives: on a virtual machine that
 * is an idle vCPU halted and woken again, tens of microseconds each time, on every hop of a
 * request-reply round trip. The Erlang VM under RabbitMQ avoids it the same way: its
 * schedulers busy-wait before they sleep (`+sbwt`, "medium" by default).
 *
 * After a read, the event loop keeps polling the sockets without blocking (a chain of
 * setImmediate: libuv polls with a zero timeout while one is pending) for `windowUs`
 * microseconds; every further read extends the window. A broker with no traffic never
 * spins; one with steady traffic never sleeps anyway. The price is CPU time that shows
 * as use while traffic is sparse: at most `windowUs` per read. `--busy-poll 0` turns it off.
 */
export class BusyPoll {
  /** spins started (statistics, tests) */
  spins = 0;
  private windowMs: number;
  private until = 0;
  private spinning = false;
  private idleWaiters: (() => void)[] = [];

  constructor(windowUs: number) {
    this.windowMs = windowUs / 1000;
  }

  get active(): boolean {
    return this.spinning;
  }

  /** A socket read was handled (hot path: once per read, not per frame). */
  noteActivity(): void {
    if (this.windowMs === 0) return;
    this.until = performance.now() + this.windowMs;
    if (this.spinning) return;
    this.spinning = true;
    this.spins++;
    setImmediate(spinStep, this);
  }

  /** The broker stops serving: the current spin ends at its next step, and no other starts. */
  stop(): void {
    this.windowMs = 0;
    this.until = 0;
  }

  /** Resolves once no spin is running. */
  whenIdle(): Promise<void> {
    if (!this.spinning) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** one turn of the event loop while spinning (never throws: a setImmediate callback) */
  step(): void {
    if (performance.now() < this.until) {
      setImmediate(spinStep, this);
      return;
    }
    this.spinning = false;
    const waiters = this.idleWaiters;
    if (waiters.length === 0) return;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

function spinStep(poll: BusyPoll): void {
  poll.step();
}
