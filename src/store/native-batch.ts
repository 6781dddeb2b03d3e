import { createRequire } from 'node:module';
import type { Level } from 'level';
import type { PutValue } from './value-parts.js';

export type BatchOp = { type: 'put'; key: Buffer; value: PutValue } | { type: 'del'; key: Buffer };
/** An operation whose value is in one buffer. */
export type WholeOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/** `ops` with every value in one buffer (the same array when none is in parts, as is usual). */
export function wholeOps(ops: readonly BatchOp[]): readonly WholeOp[] {
  let i = 0;
  while (i < ops.length) {
    const op = ops[i]!;
    if (op.type === 'put' && !Buffer.isBuffer(op.value)) break;
    i++;
  }
  if (i === ops.length) return ops as readonly WholeOp[];
  const out = ops.slice(0, i) as WholeOp[];
  for (; i < ops.length; i++) {
    const op = ops[i]!;
    out.push(op.type === 'put' && !Buffer.isBuffer(op.value) ? { type: 'put', key: op.key, value: op.value.join() } : (op as WholeOp));
  }
  return out;
}

export type Db = Level<Buffer, Buffer>;
export type WriteBatch = (ops: readonly BatchOp[], options: { sync: boolean }) => Promise<void>;

interface ClassicLevelBinding {
  batch_do(context: unknown, ops: readonly WholeOp[], options: { sync: boolean }): Promise<void>;
  batch_init(context: unknown): unknown;
  batch_put(batch: unknown, key: Buffer, value: Buffer): void;
  batch_del(batch: unknown, key: Buffer): void;
  batch_clear(batch: unknown): void;
  batch_write(batch: unknown, options: { sync: boolean }): Promise<void>;
}

/** classic-level's native binding, loaded through `level` (which is classic-level on Node). */
function loadBinding(): ClassicLevelBinding | null {
  try {
    const fromHere = createRequire(import.meta.url);
    const fromLevel = createRequire(fromHere.resolve('level'));
    const binding = fromLevel('classic-level/binding.js') as Partial<ClassicLevelBinding>;
    const names = ['batch_do', 'batch_init', 'batch_put', 'batch_del', 'batch_clear', 'batch_write'] as const;
    return names.every((n) => typeof binding[n] === 'function') ? (binding as ClassicLevelBinding) : null;
  } catch {
    return null;
  }
}

const binding = loadBinding();

/**
 * How one atomic write reaches LevelDB, with its native memory released as soon as the
 * write completes.
 *
 * classic-level's chained batch (db.batch()) copies every operation into a native
 * WriteBatch that is freed only when V8 collects the small JS object holding it (its
 * close() is a no-op: "currently done on GC"); under a flood those batches piled up by the
 * gigabyte. Its array form (db.batch(ops)) frees the WriteBatch when the write completes,
 * but abstract-level first clones and re-validates every operation in JS (several times
 * slower). The binding's batch_do is what the array form ends in: called directly with our
 * already-valid Buffer keys and values, it is as fast as the chained batch and frees the
 * WriteBatch at once. When the binding is not reachable (another `level` build), the array
 * form is used: slower, never leaky.
 */
export function batchWriter(db: Db): WriteBatch {
  const context = contextOf(db);
  if (binding !== null && context !== undefined) {
    const b = binding;
    return (ops, options) => b.batch_do(context, wholeOps(ops), options);
  }
  return (ops, options) => db.batch(wholeOps(ops) as WholeOp[], options);
}

/** Whether writes use the native path (tests check that the prompt release is in force). */
export function usesNativeBatch(db: Db): boolean {
  return binding !== null && contextOf(db) !== undefined;
}

function contextOf(db: Db): unknown {
  const symbol = Object.getOwnPropertySymbols(db).find((s) => s.description === 'context');
  return symbol === undefined ? undefined : (db as unknown as Record<symbol, unknown>)[symbol];
}

/**
 * One native write batch used again and again: operations go in one call each, then one
 * write; the batch is cleared once the write completes and filled again for the next one.
 *
 * batch_do (above) reads each operation's `type`, `key` and `value` through N-API property
 * lookups, which build and internalize a V8 string for every name on every operation; one
 * batch_put/batch_del call per operation takes its Buffers as arguments (about half the
 * main-thread time per operation, measured: 0.6-0.9 µs against 1.1-1.6 µs for 400 ops of
 * 1 KiB and 40 B). Reuse is what keeps it from the chained batch's leak (a batch created per
 * write is freed only when V8 collects it): there is only ever this one. A cleared batch
 * keeps its buffer's capacity, so callers use it only for writes up to REUSABLE_BATCH_BYTES
 * (its memory stays below twice that: 8 MiB) and write larger ones with batchWriter.
 *
 * One write at a time: `write` must complete before the next `put`/`del`.
 */
export interface ReusableBatch {
  put(key: Buffer, value: Buffer): void;
  del(key: Buffer): void;
  /** writes what was put since the last write (the batch is empty again once it resolves, failed or not) */
  write(options: { sync: boolean }): Promise<void>;
  /** drops what was put since the last write, unwritten */
  clear(): void;
}

/** writes larger than this (keys and values) do not go through a ReusableBatch */
export const REUSABLE_BATCH_BYTES = 4 * 1024 * 1024;

/** a ReusableBatch on this handle, or null when classic-level's binding is not reachable */
export function reusableBatch(db: Db): ReusableBatch | null {
  const context = contextOf(db);
  if (binding === null || context === undefined) return null;
  const b = binding;
  const batch = b.batch_init(context);
  return {
    put: (key, value) => b.batch_put(batch, key, value),
    del: (key) => b.batch_del(batch, key),
    write: (options) => {
      let written: Promise<void>;
      try {
        written = b.batch_write(batch, options);
      } catch (err) {
        b.batch_clear(batch);
        return Promise.reject(err);
      }
      const clear = (): void => b.batch_clear(batch);
      return written.then(clear, (err: unknown) => {
        clear();
        throw err;
      });
    },
    clear: () => b.batch_clear(batch),
  };
}
