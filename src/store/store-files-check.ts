/**
 * The checks a data directory passes before LevelDB may open it (LevelDB would skip damaged
 * log records, read damaged table blocks and delete the files a short MANIFEST does not name,
 * all without a word). Read-only: nothing here writes to the directory.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkWriteBatch,
  decodeManifest,
  FormatError,
  logFileName,
  parseLevelFileName,
  readLogFile,
  tableFileName,
  verifyTable,
  type ManifestState,
} from './leveldb-format.js';

/**
 * What a forced recovery has to do about a finding: `repair` rebuilds LevelDB's MANIFEST
 * from the table and log files that are there (LevelDB's RepairDB, which also drops table
 * blocks it cannot read); `open` lets LevelDB's open skip what it cannot read (damaged
 * write-ahead log records).
 */
export type Remedy = 'repair' | 'open';

export interface DamageFinding {
  /** the file, relative to the data dir */
  readonly file: string;
  readonly problem: string;
  readonly remedy: Remedy;
  /**
   * Table blocks whose checksum fails (offsets of their type bytes). Without checksum
   * verification LevelDB would decode them as if they were sound (garbage keys and values);
   * a forced recovery marks them unreadable first, so LevelDB's repair leaves them out.
   */
  readonly badBlocks?: readonly number[];
}

export interface FilesCheck {
  readonly findings: DamageFinding[];
  /** odd but not damage (e.g. the end of a write a crash interrupted) */
  readonly warnings: string[];
  /** ordinary leftovers (a table a flush interrupted by a shutdown or a crash wrote) */
  readonly notes: string[];
  /** LevelDB's files that matter for the data (no LOCK, no info logs): name → size */
  readonly files: Map<string, number>;
  /** table bytes whose block checksums were verified */
  readonly tableBytes: number;
}

export const BYTEWISE_COMPARATOR = 'leveldb.BytewiseComparator';

/** LevelDB's files in `dir` that hold data (CURRENT, MANIFEST-*, *.log, *.ldb, *.sst) with their sizes. */
export async function listStoreFiles(dir: string): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const parsed = parseLevelFileName(entry.name);
    if (parsed === null || parsed.kind === 'lock' || parsed.kind === 'info-log' || parsed.kind === 'temp') continue;
    files.set(entry.name, (await stat(join(dir, entry.name))).size);
  }
  return files;
}

/**
 * Checks the data directory's LevelDB files: CURRENT names a MANIFEST that reads without
 * damage and holds every field LevelDB needs; every table the MANIFEST names is there with
 * its recorded size and every block of it matches its checksum; the log the MANIFEST
 * names is there and every write-ahead log LevelDB would replay reads without damage.
 *
 * `atCleanShutdown` is the file list recorded when Warren last stopped cleanly (null after a
 * crash): then every file must still be there with the same size, and a record cut off at the
 * end of a log is damage (after a crash it is only a write that never completed).
 */
export async function checkStoreFiles(dir: string, atCleanShutdown: ReadonlyMap<string, number> | null): Promise<FilesCheck> {
  const findings: DamageFinding[] = [];
  const warnings: string[] = [];
  const notes: string[] = [];
  const files = await listStoreFiles(dir);

  // CURRENT → MANIFEST
  let manifestName: string | null = null;
  if (!files.has('CURRENT')) {
    findings.push({ file: 'CURRENT', problem: 'missing: LevelDB would create an empty store and delete every table', remedy: 'repair' });
  } else {
    const current = (await readFile(join(dir, 'CURRENT'))).toString('latin1');
    const m = /^(MANIFEST-[0-9]+)\n$/.exec(current);
    if (m === null) findings.push({ file: 'CURRENT', problem: `does not name a MANIFEST (${JSON.stringify(current.slice(0, 40))})`, remedy: 'repair' });
    else if (!files.has(m[1]!)) findings.push({ file: 'CURRENT', problem: `names ${m[1]}, which is missing`, remedy: 'repair' });
    else manifestName = m[1]!;
  }

  let clean = atCleanShutdown !== null;
  if (atCleanShutdown !== null) {
    const recordedManifest = [...atCleanShutdown.keys()].find((n) => parseLevelFileName(n)?.kind === 'manifest');
    if (manifestName !== null && recordedManifest !== undefined && manifestName !== recordedManifest && !atCleanShutdown.has(manifestName)) {
      // LevelDB writes a new MANIFEST at each open: another program opened the store since
      warnings.push(`the store was opened by another program since the last clean shutdown (${manifestName}, not ${recordedManifest}); its files are not compared with that shutdown's`);
      clean = false;
    } else {
      for (const [name, size] of atCleanShutdown) {
        const now = files.get(name);
        const kind = parseLevelFileName(name)?.kind;
        const remedy: Remedy = kind === 'log' ? 'open' : 'repair';
        if (now === undefined) findings.push({ file: name, problem: 'missing (it was there at the last clean shutdown)', remedy });
        else if (now !== size) findings.push({ file: name, problem: `${now} bytes, ${size} at the last clean shutdown (${now < size ? 'cut short' : 'grown'})`, remedy });
      }
      for (const name of files.keys()) {
        if (!atCleanShutdown.has(name)) warnings.push(`${name} appeared after the last clean shutdown`);
      }
    }
  }

  let manifest: ManifestState | null = null;
  if (manifestName !== null) manifest = await checkManifest(dir, manifestName, clean, findings, warnings);

  let tableBytes = 0;
  if (manifest !== null) {
    // tables: there, with their recorded size, every block sound
    for (const t of manifest.tables.values()) {
      const name = files.has(tableFileName(t.number)) ? tableFileName(t.number) : files.has(tableFileName(t.number, 'sst')) ? tableFileName(t.number, 'sst') : null;
      if (name === null) {
        findings.push({ file: tableFileName(t.number), problem: 'missing (the MANIFEST names it)', remedy: 'repair' });
        continue;
      }
      const size = files.get(name)!;
      if (size !== t.size) {
        findings.push({ file: name, problem: `${size} bytes, the MANIFEST says ${t.size}`, remedy: 'repair' });
        continue;
      }
      const problems = verifyTable(await readFile(join(dir, name)));
      tableBytes += size;
      if (problems.length > 0) {
        const first = problems[0]!;
        const more = problems.length > 1 ? ` (and ${problems.length - 1} more damaged blocks)` : '';
        const badBlocks = problems.flatMap((p) => (p.typeByteAt === undefined ? [] : [p.typeByteAt]));
        findings.push({ file: name, problem: `at offset ${first.offset}: ${first.reason}${more}`, remedy: 'repair', badBlocks });
      }
    }
    for (const [name] of files) {
      const parsed = parseLevelFileName(name);
      if (parsed?.kind === 'table' && !manifest.tables.has(parsed.number) && manifest.nextFile !== null && parsed.number >= manifest.nextFile) {
        notes.push(`${name} is not in the MANIFEST (a flush or compaction a stop interrupted wrote it; LevelDB deletes it)`);
      }
    }

    // write-ahead logs: the one the MANIFEST names, and every one LevelDB will replay
    const logNumber = manifest.logNumber ?? 0;
    if (logNumber > 0 && !files.has(logFileName(logNumber))) {
      findings.push({ file: logFileName(logNumber), problem: 'missing: the MANIFEST names it (the MANIFEST is older than the data)', remedy: 'repair' });
    }
    const logs = [...files.keys()]
      .map((name) => ({ name, parsed: parseLevelFileName(name) }))
      .filter((f) => f.parsed?.kind === 'log' && (f.parsed.number >= logNumber || f.parsed.number === manifest.prevLogNumber))
      .sort((a, b) => a.parsed!.number - b.parsed!.number);
    for (let i = 0; i < logs.length; i++) await checkWriteAheadLog(dir, logs[i]!.name, clean, i === logs.length - 1, findings, warnings);
  }
  return { findings, warnings, notes, files, tableBytes };
}

async function checkManifest(dir: string, name: string, clean: boolean, findings: DamageFinding[], warnings: string[]): Promise<ManifestState | null> {
  const log = readLogFile(await readFile(join(dir, name)));
  for (const c of log.corruptions) findings.push({ file: name, problem: `at offset ${c.offset}: ${c.reason} (${c.bytes} bytes)`, remedy: 'repair' });
  if (log.truncatedTail !== null) {
    const text = `cut off in a record at offset ${log.truncatedTail.offset} (${log.truncatedTail.bytes} bytes)`;
    if (clean) findings.push({ file: name, problem: text, remedy: 'repair' });
    else warnings.push(`${name}: ${text}, a write a crash interrupted`);
  }
  let state: ManifestState;
  try {
    state = decodeManifest(log.records);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    findings.push({ file: name, problem: e.message, remedy: 'repair' });
    return null;
  }
  const missing: string[] = [];
  if (state.comparator === null) missing.push('comparator');
  if (state.logNumber === null) missing.push('log number');
  if (state.nextFile === null) missing.push('next file number');
  if (state.lastSequence === null) missing.push('last sequence');
  if (missing.length > 0) {
    findings.push({ file: name, problem: `no ${missing.join(', ')} (cut short?)`, remedy: 'repair' });
    return null;
  }
  if (state.comparator !== BYTEWISE_COMPARATOR) {
    findings.push({ file: name, problem: `uses comparator ${JSON.stringify(state.comparator)}, not ${BYTEWISE_COMPARATOR}`, remedy: 'repair' });
    return null;
  }
  return state;
}

/**
 * `newest`: the log that was being written. After a power cut its last writes may be torn
 * (unsynced, never confirmed): damage with no sound record after it is then what LevelDB
 * is right to skip. Damage followed by sound records, in an older log or after a clean
 * shutdown, is not.
 */
async function checkWriteAheadLog(dir: string, name: string, clean: boolean, newest: boolean, findings: DamageFinding[], warnings: string[]): Promise<void> {
  const log = readLogFile(await readFile(join(dir, name)));
  const damaged = log.corruptions.reduce((n, c) => n + c.bytes, 0);
  const lastRecord = log.records.length === 0 ? -1 : log.records[log.records.length - 1]!.offset;
  const tornTail = newest && !clean && log.corruptions.every((c) => c.offset > lastRecord);
  if (log.corruptions.length > 0 && tornTail) {
    warnings.push(`${name}: ${damaged} bytes unreadable at its end (offset ${log.corruptions[0]!.offset}), writes a crash or power cut interrupted (never confirmed)`);
  } else if (log.corruptions.length > 0) {
    const first = log.corruptions[0]!;
    findings.push({
      file: name,
      problem: `${damaged} bytes of write-ahead log unreadable, first at offset ${first.offset} (${first.reason}); ${log.records.length} records read`,
      remedy: 'open',
    });
  }
  if (log.truncatedTail !== null) {
    const text = `cut off in a record at offset ${log.truncatedTail.offset} (${log.truncatedTail.bytes} bytes)`;
    if (clean) findings.push({ file: name, problem: text, remedy: 'open' });
    else warnings.push(`${name}: ${text}, a write a crash interrupted (never confirmed)`);
  }
  for (const r of log.records) {
    try {
      checkWriteBatch(r.data);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      findings.push({ file: name, problem: `record at offset ${r.offset}: ${e.message}`, remedy: 'open' });
      break;
    }
  }
}
