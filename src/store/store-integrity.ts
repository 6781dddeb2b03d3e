/**
 * What LevelStore does around LevelDB's open and close so that damage is never silent and a
 * failed start never destroys data:
 *
 * 1. before the open (the directory locked): the files are checked (store-files-check.ts)
 *    against LevelDB's formats and against the clean-shutdown record, and the directory's
 *    files are hard-linked into a snapshot;
 * 2. after the open: what the store holds (entries per queue, messages) is compared with
 *    the clean-shutdown record;
 * 3. damage found: by default the start is refused with a message that says what and where,
 *    and the directory is put back exactly as it was (the snapshot); with `forceRecovery`
 *    the damaged files are kept aside (`damaged-<time>/`), LevelDB's repair rebuilds what
 *    it must, and the store starts with what can be read, every loss logged at error level;
 * 4. a verified open drops the snapshot and the clean-shutdown record (before any write, so
 *    that a crash cannot leave a stale one); a clean close writes a new record.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import type { Logger } from 'pino';
import {
  CLEAN_SHUTDOWN_FILE,
  readCleanShutdown,
  writeCleanShutdown,
  type CleanShutdownRecord,
  type QueueCount,
  type StoreCounts,
} from './clean-shutdown.js';
import { LOCK_DIR } from './dir-lock.js';
import { dropSnapshot, keepSnapshot, restoreSnapshot, SNAPSHOT_DIR, takeSnapshot, undoInterruptedStart, type FileSnapshot } from './file-snapshot.js';
import { FORMAT_VERSION, indexTransient, kindRange, Prefix, queueIdOfIndexKey } from './keys.js';
import { UNREADABLE_BLOCK_TYPE } from './leveldb-format.js';
import { replaceFileDurably } from './sync-dir.js';
import { QUARANTINE_DIR, quarantineRecords } from './quarantine.js';
import { SPILL_DIR } from './segment-spill.js';
import { BODIES_DIR } from './body-files.js';
import { checkStoreFiles, listStoreFiles, type DamageFinding } from './store-files-check.js';
import { decodeQueueRecord, describeKey, findDamagedRecords } from './topology-records.js';
import { StoreError } from './store-error.js';

type Db = Level<Buffer, Buffer>;

export interface IntegrityOptions {
  /** start with what can be read when the store is damaged (default: refuse to start) */
  readonly forceRecovery?: boolean;
}

/** The store is damaged and Warren refuses to start on it (the directory is left as it was). */
export class StoreDamagedError extends StoreError {
  constructor(
    message: string,
    readonly damage: readonly string[],
  ) {
    super(message);
    this.name = 'StoreDamagedError';
  }
}

export const FORCE_RECOVERY_HINT = 'Run with --force-recovery (or WARREN_FORCE_RECOVERY=true) to start with what can be read';

const SCAN_CHUNK = 1000;


/** What Warren itself keeps in the data dir beside LevelDB's files (and LevelDB repair's `lost/`). */
export function isWarrenEntry(name: string): boolean {
  return (
    name === LOCK_DIR ||
    name === SNAPSHOT_DIR ||
    name === CLEAN_SHUTDOWN_FILE ||
    name === `${CLEAN_SHUTDOWN_FILE}.tmp` ||
    name === QUARANTINE_DIR ||
    name === SPILL_DIR ||
    name === BODIES_DIR ||
    name === 'lost' ||
    name.startsWith('damaged-')
  );
}

/** LevelDB's RepairDB (classic-level's static repair; `level`'s typings leave it out). */
async function repairLevelDb(dir: string): Promise<void> {
  const repair = (Level as unknown as { repair?: (location: string) => Promise<void> }).repair;
  if (typeof repair !== 'function') throw new StoreError('this LevelDB binding has no repair');
  await repair.call(Level, dir);
}

/**
 * Gives each damaged block of a table a block type LevelDB refuses to decode, so that its
 * repair copies the sound blocks and leaves these out (LevelDB does not check block CRCs
 * here and would decode the garbage). The file is rewritten under a new inode: the damaged
 * copy kept aside is a hard link to the original and must stay as it was.
 */
async function markBlocksUnreadable(dir: string, name: string, typeBytes: readonly number[]): Promise<void> {
  const path = join(dir, name);
  const bytes = await readFile(path);
  for (const at of typeBytes) bytes[at] = UNREADABLE_BLOCK_TYPE;
  await replaceFileDurably(path, bytes, `${path}.warren-tmp`);
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

function describeFinding(f: DamageFinding): string {
  return `${f.file}: ${f.problem}`;
}

function queueLabel(q: QueueCount): string {
  return `queue '${q.name}' in vhost '${q.vhost}'`;
}

function describeHeld(record: CleanShutdownRecord): string {
  const total = record.queues.reduce((n, q) => n + q.entries, 0);
  const top = [...record.queues].filter((q) => q.entries > 0).sort((a, b) => b.entries - a.entries);
  const shown = top.slice(0, 5).map((q) => `${queueLabel(q)}: ${q.entries}`);
  if (top.length > 5) shown.push(`${top.length - 5} more`);
  return `at the last clean shutdown (${record.at}) it held ${total} queued messages in ${top.length} ${top.length === 1 ? 'queue' : 'queues'}${shown.length > 0 ? ` (${shown.join('; ')})` : ''}`;
}

/**
 * Counts what recovery will find: the persistent (not transient) index entries of each queue
 * that has a queue record. (Entries of queues without a record are what an interrupted queue
 * delete leaves; recovery removes them, and transient ones never survive a restart.)
 */
export async function countStore(db: Db): Promise<StoreCounts> {
  const names = new Map<number, { vhost: string; name: string }>();
  for (const value of await db.values(kindRange(Prefix.Queue)).all()) {
    try {
      const q = decodeQueueRecord(value);
      names.set(q.id, { vhost: q.vhost, name: q.name });
    } catch {
      // a damaged queue record: reported by findDamagedRecords
    }
  }
  const entries = new Map<number, number>();
  const it = db.iterator(kindRange(Prefix.Index));
  try {
    for (;;) {
      const chunk = await it.nextv(SCAN_CHUNK);
      if (chunk.length === 0) break;
      for (const [key, value] of chunk) {
        if (indexTransient(value)) continue;
        const id = queueIdOfIndexKey(key);
        entries.set(id, (entries.get(id) ?? 0) + 1);
      }
    }
  } finally {
    await it.close();
  }
  const queues: QueueCount[] = [...names]
    .sort((a, b) => a[0] - b[0])
    .map(([id, n]) => ({ id, vhost: n.vhost, name: n.name, entries: entries.get(id) ?? 0 }));
  return { queues };
}

/** What differs between the record and what recovery found (fewer or more per queue), as sentences. */
export function compareCounts(record: StoreCounts, found: readonly { queueId: number; count: number }[]): string[] {
  const out: string[] = [];
  const now = new Map(found.map((q) => [q.queueId, q.count]));
  for (const q of record.queues) {
    const n = now.get(q.id);
    if (n === undefined) {
      if (q.entries > 0) out.push(`${queueLabel(q)}: gone (its record is missing), ${q.entries} messages at the last clean shutdown`);
      continue;
    }
    if (n < q.entries) out.push(`${queueLabel(q)}: ${n} messages, ${q.entries} at the last clean shutdown (${q.entries - n} missing)`);
    else if (n > q.entries) out.push(`${queueLabel(q)}: ${n} messages, ${q.entries} at the last clean shutdown (${n - q.entries} more)`);
  }
  const recorded = new Set(record.queues.map((q) => q.id));
  for (const [id, n] of now) {
    if (!recorded.has(id) && n > 0) out.push(`queue #${id}: ${n} messages, not in the store at the last clean shutdown`);
  }
  return out;
}

export class StoreIntegrity {
  private snapshot: FileSnapshot | null = null;
  private record: CleanShutdownRecord | null = null;
  /** where the damaged files were kept (a forced recovery) */
  private keptAt: string | null = null;

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
    private readonly options: IntegrityOptions = {},
  ) {}

  private get force(): boolean {
    return this.options.forceRecovery === true;
  }

  /** Before LevelDB opens an existing store (the caller holds the directory lock). */
  async beforeOpen(): Promise<void> {
    const dir = this.dir;
    if ((await undoInterruptedStart(dir)) === 'restored') {
      this.logger.warn({ dataDir: dir }, 'store: a previous start died before its checks finished; the files it started from were put back');
    }
    const started = Date.now();
    const record = await readCleanShutdown(dir);
    const damage: string[] = [];
    let repair = false;
    if (typeof record === 'string') damage.push(record);
    else this.record = record;
    const check = await checkStoreFiles(dir, this.record === null ? null : new Map(Object.entries(this.record.files)));
    for (const w of check.warnings) this.logger.warn({ dataDir: dir }, `store: ${w}`);
    for (const n of check.notes) this.logger.info({ dataDir: dir }, `store: ${n}`);
    for (const f of check.findings) {
      damage.push(describeFinding(f));
      if (f.remedy === 'repair') repair = true;
    }
    this.logger.info(
      { dataDir: dir, files: check.files.size, tableBytes: check.tableBytes, cleanShutdown: this.record !== null, ms: Date.now() - started },
      'store: files checked',
    );
    if (damage.length > 0) {
      if (!this.force) throw this.refusal(damage, 'Nothing was changed.');
      this.snapshot = await takeSnapshot(dir, [CLEAN_SHUTDOWN_FILE]);
      this.keptAt = await keepSnapshot(dir, this.snapshot, `damaged-${stamp()}`);
      this.logger.error(
        { dataDir: dir, damage, keptAt: this.keptAt, repair },
        `store damaged; starting with what can be read (--force-recovery): ${damage.join('; ')}. The damaged files are kept in ${this.keptAt}`,
      );
      for (const f of check.findings) {
        if (f.badBlocks !== undefined && f.badBlocks.length > 0) await markBlocksUnreadable(dir, f.file, f.badBlocks);
      }
      if (repair) {
        this.logger.warn({ dataDir: dir }, "store: rebuilding LevelDB's MANIFEST from the files that are there (LevelDB repair)");
        await repairLevelDb(dir);
      }
      return;
    }
    // the clean-shutdown record moves into the snapshot: gone once the start is verified, back if it is undone
    this.snapshot = await takeSnapshot(dir, [CLEAN_SHUTDOWN_FILE]);
    if (this.snapshot.copied) this.logger.warn({ dataDir: dir }, 'store: no hard links on this file system; the files were copied before the open');
  }

  /** LevelDB has opened the directory: every topology and access record must decode. */
  async afterOpen(db: Db): Promise<void> {
    const records = await findDamagedRecords(db);
    if (records.length === 0) return;
    const damage = records.map((r) => `${r.kind} ${describeKey(r.key)}: ${r.reason}`);
    if (!this.force) throw this.refusal(damage, 'The data directory was put back as it was.');
    await this.keep();
    // set aside (kept in quarantine/), so that the start can read the rest
    const path = await quarantineRecords(
      this.dir,
      records.map((r) => ({ what: `${r.kind} ${describeKey(r.key)}`, key: r.key, value: r.value, reason: r.reason })),
    );
    await db.batch(
      records.map((r) => ({ type: 'del' as const, key: r.key })),
      { sync: true },
    );
    this.logger.error({ dataDir: this.dir, damage, quarantined: records.length, file: path, keptAt: this.keptAt }, `store: ${records.length} damaged records moved to ${path}: ${damage.join('; ')}`);
  }

  /**
   * Recovery has scanned the index: what it found per queue must match the clean-shutdown
   * record. Then the start is verified (the snapshot is dropped).
   */
  async afterRecovery(found: readonly { queueId: number; count: number }[]): Promise<void> {
    const record = this.record;
    if (record === null) {
      this.logger.info({ dataDir: this.dir }, 'store: no clean-shutdown record (first start, or the last stop was not clean): counts not compared');
    } else if (record.format !== FORMAT_VERSION) {
      this.logger.info({ dataDir: this.dir, format: record.format }, 'store: the last clean shutdown was by a Warren of another store format: counts not compared');
    } else {
      const damage = compareCounts(record, found);
      if (damage.length > 0) {
        if (!this.force) throw this.refusal(damage, 'The data directory was put back as it was.');
        await this.keep();
        this.logger.error(
          { dataDir: this.dir, damage, keptAt: this.keptAt },
          `store: started with fewer or other messages than at the last clean shutdown (--force-recovery): ${damage.join('; ')}`,
        );
      }
    }
    await this.opened();
  }

  private async keep(): Promise<void> {
    if (this.keptAt === null && this.snapshot !== null) this.keptAt = await keepSnapshot(this.dir, this.snapshot, `damaged-${stamp()}`);
  }

  /** The start is verified (or the store closes without a recovery): the snapshot, with the old record in it, goes. */
  async opened(): Promise<void> {
    if (this.snapshot !== null && this.keptAt === null) await dropSnapshot(this.snapshot);
    this.snapshot = null;
  }

  /**
   * The start failed after the snapshot was taken (LevelDB's open, the format check, the
   * counts): put the directory back as it was. A forced recovery has kept its copy aside.
   */
  async failed(): Promise<void> {
    const snapshot = this.snapshot;
    this.snapshot = null;
    if (snapshot === null) return;
    if (this.keptAt !== null) {
      this.logger.error({ dataDir: this.dir, keptAt: this.keptAt }, `store: the forced recovery failed; the files it started from are in ${this.keptAt}`);
      return;
    }
    await restoreSnapshot(this.dir, snapshot);
  }

  /** A clean close: what the store holds, counted while it is still open. */
  countForShutdown(db: Db): Promise<StoreCounts> {
    return countStore(db);
  }

  /** After LevelDB closed: the record for the next start. */
  async writeCleanShutdown(counts: StoreCounts): Promise<void> {
    const files = await listStoreFiles(this.dir);
    await writeCleanShutdown(this.dir, { format: FORMAT_VERSION, at: new Date().toISOString(), files: Object.fromEntries(files), ...counts });
  }

  private refusal(damage: readonly string[], outcome: string): StoreDamagedError {
    const held = this.record === null ? '' : ` ${describeHeld(this.record)[0]!.toUpperCase()}${describeHeld(this.record).slice(1)}.`;
    return new StoreDamagedError(
      `the store in ${this.dir} is damaged: ${damage.join('; ')}.${held} ${outcome} ${FORCE_RECOVERY_HINT}; the damaged files are then kept in ${join(this.dir, 'damaged-<time>')}`,
      damage,
    );
  }
}
