/** Opaque handle of the scheduler's one timer. */
export type DelayTimerHandle = unknown;

export interface DelaySchedulerOptions<M> {
  /** called for each due item, in due order (ties in schedule order) */
  readonly onDue: (item: M) => void;
  /**
   * An onDue that threw: with this option the error is handed here and the other due items
   * go on; without it, runDue rethrows once the timer is re-armed (nothing is lost either way).
   */
  readonly onError?: (err: unknown, item: M) => void;
  /** ms clock; default Date.now (due times are wall-clock so they survive restarts) */
  readonly now?: () => number;
  /** arms the timer; default setTimeout, unref'd so pending delays never keep the process alive */
  readonly setTimer?: (callback: () => void, delayMs: number) => DelayTimerHandle;
  readonly clearTimer?: (handle: DelayTimerHandle) => void;
}

/** Node clamps larger timeouts to 1 ms (TimeoutOverflowWarning); we re-arm instead. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

function defaultSetTimer(callback: () => void, delayMs: number): DelayTimerHandle {
  const t = setTimeout(callback, delayMs);
  t.unref();
  return t;
}

function defaultClearTimer(handle: DelayTimerHandle): void {
  clearTimeout(handle as NodeJS.Timeout);
}

/**
 * Holds items until their due time, for the x-delayed-message exchange (the community
 * plugin's semantics: a message with a positive x-delay is held, then routed as the
 * x-delayed-type exchange would route it).
 *
 * A binary min-heap on (dueAt, insertion order) kept in parallel arrays (no object per
 * item), with ONE timer armed for the earliest item and re-armed as the head changes.
 * Items already due when scheduled are still delivered from the timer, never
 * synchronously from schedule(), so a publish never re-enters routing.
 */
export class DelayScheduler<M> {
  readonly #onDue: (item: M) => void;
  readonly #onError: ((err: unknown, item: M) => void) | null;
  readonly #now: () => number;
  readonly #setTimer: (callback: () => void, delayMs: number) => DelayTimerHandle;
  readonly #clearTimer: (handle: DelayTimerHandle) => void;

  readonly #due: number[] = [];
  readonly #order: number[] = [];
  readonly #items: M[] = [];
  #nextOrder = 0;

  #timer: DelayTimerHandle = null;
  #armed = false;
  /** the due time the armed timer was set for */
  #armedFor = 0;
  #firing = false;
  #stopped = false;

  constructor(options: DelaySchedulerOptions<M>) {
    this.#onDue = options.onDue;
    this.#onError = options.onError ?? null;
    this.#now = options.now ?? Date.now;
    this.#setTimer = options.setTimer ?? defaultSetTimer;
    this.#clearTimer = options.clearTimer ?? defaultClearTimer;
  }

  /** number of pending items */
  get size(): number {
    return this.#items.length;
  }

  /** due time of the earliest pending item, or undefined when none */
  get nextDueAt(): number | undefined {
    return this.#items.length === 0 ? undefined : this.#due[0];
  }

  /** holds `item` until `dueAt` (ms on the scheduler's clock); past due times fire on the next tick */
  schedule(dueAt: number, item: M): void {
    const due = this.#due;
    const order = this.#order;
    const items = this.#items;
    let i = items.length;
    const seq = this.#nextOrder++;
    due.push(dueAt);
    order.push(seq);
    items.push(item);
    // sift up
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pd = due[parent]!;
      if (pd < dueAt || (pd === dueAt && order[parent]! < seq)) break;
      due[i] = pd;
      order[i] = order[parent]!;
      items[i] = items[parent]!;
      i = parent;
    }
    due[i] = dueAt;
    order[i] = seq;
    items[i] = item;
    if (i === 0) this.#arm();
  }

  /** pending items, earliest first (a sorted copy: for inspection and shutdown, not the hot path) */
  pending(): M[] {
    const idx = this.#items.map((_, i) => i);
    idx.sort((a, b) => this.#due[a]! - this.#due[b]! || this.#order[a]! - this.#order[b]!);
    return idx.map((i) => this.#items[i]!);
  }

  /** drops every pending item and the timer (exchange deleted) */
  clear(): void {
    this.#due.length = 0;
    this.#order.length = 0;
    this.#items.length = 0;
    this.#disarm();
  }

  /** cancels the timer and arms no more until start(); pending items are kept */
  stop(): void {
    this.#stopped = true;
    this.#disarm();
  }

  /** re-arms after stop() (items that fell due meanwhile fire on the next tick) */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#arm();
  }

  /**
   * Delivers every item due by now, in due order, then re-arms for the next one.
   * The timer calls this; tests may too. An onDue that throws does not lose the
   * other items: it goes to onError and the loop goes on, or without onError the timer is
   * re-armed and the error rethrown after.
   */
  runDue(): void {
    if (this.#firing) return;
    this.#firing = true;
    try {
      const now = this.#now();
      while (this.#items.length > 0 && this.#due[0]! <= now && !this.#stopped) {
        const item = this.#pop();
        if (this.#onError === null) {
          this.#onDue(item);
          continue;
        }
        try {
          this.#onDue(item);
        } catch (err) {
          this.#onError(err, item);
        }
      }
    } finally {
      this.#firing = false;
      this.#arm();
    }
  }

  readonly #fire = (): void => {
    this.#armed = false;
    this.#timer = null;
    this.runDue();
  };

  #pop(): M {
    const due = this.#due;
    const order = this.#order;
    const items = this.#items;
    const top = items[0]!;
    const lastDue = due.pop()!;
    const lastOrder = order.pop()!;
    const lastItem = items.pop()!;
    const n = items.length;
    if (n === 0) return top;
    // sift the last element down from the root
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && (due[r]! < due[l]! || (due[r] === due[l] && order[r]! < order[l]!))) c = r;
      const cd = due[c]!;
      if (lastDue < cd || (lastDue === cd && lastOrder < order[c]!)) break;
      due[i] = cd;
      order[i] = order[c]!;
      items[i] = items[c]!;
      i = c;
    }
    due[i] = lastDue;
    order[i] = lastOrder;
    items[i] = lastItem;
    return top;
  }

  /** (re-)arms the one timer for the head item, unless already armed for it or earlier */
  #arm(): void {
    if (this.#stopped || this.#firing) return;
    if (this.#items.length === 0) {
      this.#disarm();
      return;
    }
    const dueAt = this.#due[0]!;
    if (this.#armed) {
      if (this.#armedFor <= dueAt) return;
      this.#clearTimer(this.#timer);
    }
    const delay = Math.min(Math.max(dueAt - this.#now(), 0), MAX_TIMER_DELAY_MS);
    this.#armed = true;
    this.#armedFor = dueAt;
    this.#timer = this.#setTimer(this.#fire, delay);
  }

  #disarm(): void {
    if (!this.#armed) return;
    this.#clearTimer(this.#timer);
    this.#armed = false;
    this.#timer = null;
  }
}
