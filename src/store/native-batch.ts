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
}

/** classic-level's native binding, loaded through `level` (which is classic-level on Node). */
function loadBinding(): ClassicLevelBinding | null {
  try {
    const fromHere = createRequire(import.meta.url);
    const fromLevel = createRequire(fromHere.resolve('level'));
    const binding = fromLevel('classic-level/binding.js') as Partial<ClassicLevelBinding>;
    return typeof binding.batch_do === 'function' ? (binding as ClassicLevelBinding) : null;
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
