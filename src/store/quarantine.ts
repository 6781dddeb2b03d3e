/**
 * Where stored records that cannot be read go: `<data dir>/quarantine/`, one JSON file per
 * batch of records, each with its key and value bytes exactly as they were stored and why it
 * was set aside. Written and fsynced before the records leave the store, so nothing is
 * deleted that is not kept here.
 */
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir } from './sync-dir.js';

export const QUARANTINE_DIR = 'quarantine';

export interface QuarantinedRecord {
  /** what the record was, for a person: "queue record", "message 42 of queue 'q' in vhost '/'" */
  readonly what: string;
  readonly key: Buffer;
  /** null when the value itself is missing (e.g. an index entry whose message is gone) */
  readonly value: Buffer | null;
  readonly reason: string;
}

let sequence = 0;

/** Writes the records to a new file in the quarantine directory; returns its path. */
export async function quarantineRecords(dataDir: string, records: readonly QuarantinedRecord[]): Promise<string> {
  const dir = join(dataDir, QUARANTINE_DIR);
  await mkdir(dir, { recursive: true });
  const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}-${++sequence}.json`;
  const path = join(dir, name);
  const body = JSON.stringify(
    records.map((r) => ({ what: r.what, reason: r.reason, key: r.key.toString('hex'), value: r.value === null ? null : r.value.toString('base64') })),
    null,
    1,
  );
  const fh = await open(path, 'wx');
  try {
    await fh.writeFile(body);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await syncDir(dir);
  return path;
}
