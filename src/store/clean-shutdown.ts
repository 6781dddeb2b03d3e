/**
 * The clean-shutdown record: written to the data dir after the store closed cleanly, read
 * at the next start (and moved into its snapshot, gone once that start is verified). It lists
 * what the store held (messages per queue) and LevelDB's files with their sizes, so that the next start can tell whether
 * anything was lost or changed while Warren was stopped. A start that finds no record
 * follows a crash (or a first start): nothing to compare then.
 *
 * It is a file beside LevelDB's, not a key inside it: damage to LevelDB's write-ahead log
 * must not be able to take the record with it.
 */
import { crc32c } from '@node-rs/crc32';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFileDurably } from './sync-dir.js';

export const CLEAN_SHUTDOWN_FILE = 'warren-clean-shutdown.json';

export interface QueueCount {
  readonly id: number;
  readonly vhost: string;
  readonly name: string;
  /** persistent messages the queue holds in the store (its index entries) */
  readonly entries: number;
}

export interface StoreCounts {
  readonly queues: readonly QueueCount[];
}

export interface CleanShutdownRecord extends StoreCounts {
  /** the store format written */
  readonly format: number;
  /** when the store was closed (ISO 8601) */
  readonly at: string;
  /** LevelDB's data files (see listStoreFiles) → size in bytes */
  readonly files: Readonly<Record<string, number>>;
}

interface OnDisk {
  readonly record: CleanShutdownRecord;
  /** crc32c of JSON.stringify(record) */
  readonly crc32c: number;
}

/** The record, null when there is none, or a string saying why it cannot be read. */
export async function readCleanShutdown(dir: string): Promise<CleanShutdownRecord | null | string> {
  let text: string;
  try {
    text = await readFile(join(dir, CLEAN_SHUTDOWN_FILE), 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    return `${CLEAN_SHUTDOWN_FILE} cannot be read: ${(e as Error).message}`;
  }
  try {
    const onDisk = JSON.parse(text) as OnDisk;
    const r = onDisk.record;
    if (typeof r !== 'object' || r === null || typeof onDisk.crc32c !== 'number') throw new Error('not a clean-shutdown record');
    if (crc32c(Buffer.from(JSON.stringify(r), 'utf8')) !== onDisk.crc32c) throw new Error('checksum mismatch');
    if (typeof r.files !== 'object' || !Array.isArray(r.queues)) throw new Error('fields missing');
    return r;
  } catch (e) {
    return `${CLEAN_SHUTDOWN_FILE} is damaged: ${(e as Error).message}`;
  }
}

/** Writes the record durably: a temporary file, fsync, rename over, fsync of the directory. */
export async function writeCleanShutdown(dir: string, record: CleanShutdownRecord): Promise<void> {
  const onDisk: OnDisk = { record, crc32c: crc32c(Buffer.from(JSON.stringify(record), 'utf8')) };
  await replaceFileDurably(join(dir, CLEAN_SHUTDOWN_FILE), JSON.stringify(onDisk));
}
