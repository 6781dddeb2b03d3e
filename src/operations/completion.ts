import type { CommitListener, Store } from '../store/store.js';

type Settle<T> = (error: unknown, value: T | undefined) => void;

/**
 * What an operation returns: its result, final either now or once something it started has
 * finished (the store batch holding its change is durable, or a page-in has read what it
 * needs). One type for both front ends:
 *   - HTTP and the broker API simply `await` it (it is a PromiseLike);
 *   - the AMQP channel checks `settled` and, when it is not, holds the channel's later
 *     frames until `onSettled` runs, so replies stay in order and an -ok means durable.
 * Validation and access errors are thrown synchronously by the operation itself, never
 * through a Completion; a Completion fails only when the store cannot write the change
 * (or the deferred step throws).
 */
export class Completion<T> implements PromiseLike<T> {
  private state: 'pending' | 'ok' | 'failed';
  private result: T | undefined;
  private error: unknown = null;
  private waiters: Settle<T>[] | null = null;

  private constructor(settled: boolean, value: T | undefined) {
    this.state = settled ? 'ok' : 'pending';
    this.result = value;
  }

  /** A result that is final now. */
  static done<T>(value: T): Completion<T> {
    return new Completion<T>(true, value);
  }

  /** A result that is final once the store's currently open batch is durable. */
  static afterCommit<T>(value: T, store: Store): Completion<T> {
    const c = new Completion<T>(false, value);
    store.afterCommit(new CompletionCommit(c as Completion<unknown>));
    return c;
  }

  /** `durable` ? afterCommit : done (an operation that may or may not have written). */
  static of<T>(value: T, wroteToStore: boolean, store: Store): Completion<T> {
    return wroteToStore ? Completion.afterCommit(value, store) : Completion.done(value);
  }

  /** A result computed once `ready` settles (e.g. a queue page-in); `compute` may throw. */
  static after<T>(ready: Promise<unknown>, compute: () => T | Completion<T>): Completion<T> {
    const c = new Completion<T>(false, undefined);
    ready.then(
      () => {
        let r: T | Completion<T>;
        try {
          r = compute();
        } catch (err) {
          c.settle(err, undefined);
          return;
        }
        if (r instanceof Completion) r.onSettled((err, v) => c.settle(err, v));
        else c.settle(null, r);
      },
      (err: unknown) => c.settle(err ?? new Error('failed'), undefined),
    );
    return c;
  }

  get settled(): boolean {
    return this.state === 'ok';
  }

  /** The result (meaningful once settled; for store-waiting operations it is known at once). */
  get value(): T {
    return this.result as T;
  }

  /** Called once: (null, value) when final, (error) when the store failed or the deferred step threw. */
  onSettled(cb: Settle<T>): void {
    if (this.state === 'ok') cb(null, this.result);
    else if (this.state === 'failed') cb(this.error, undefined);
    else (this.waiters ??= []).push(cb);
  }

  /** @internal */
  settle(error: unknown, value: T | undefined): void {
    if (this.state !== 'pending') return;
    if (error !== null && error !== undefined) {
      this.state = 'failed';
      this.error = error;
    } else {
      this.state = 'ok';
      if (value !== undefined) this.result = value;
    }
    const waiters = this.waiters;
    this.waiters = null;
    if (waiters !== null) for (const w of waiters) w(this.state === 'ok' ? null : this.error, this.result);
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return new Promise<T>((resolve, reject) => this.onSettled((err, v) => (err === null ? resolve(v as T) : reject(err)))).then(
      onfulfilled,
      onrejected,
    );
  }
}

class CompletionCommit implements CommitListener {
  constructor(private readonly completion: Completion<unknown>) {}
  batchCommitted(error: Error | null): void {
    this.completion.settle(error === null ? null : new Error(`store write failed: ${error.message}`, { cause: error }), undefined);
  }
}
