import type { Level } from 'level';

/**
 * In-place upgrades of a store written by an older format (keys.ts FORMAT_VERSION).
 * One step per version, each self-contained: it reads and writes the raw LevelDB and
 * knows nothing of later formats, so steps can be renumbered when two branches bump the
 * version at once. The version record is rewritten after each step, in the same write as
 * the step's last batch where it has one, so an interrupted upgrade resumes at the step
 * that did not finish.
 */
type Db = Level<Buffer, Buffer>;

export interface MigrationStep {
  /** the format this step reads; it leaves format `from + 1` */
  readonly from: number;
  readonly summary: string;
  run(db: Db): Promise<void>;
}

export const MIGRATIONS: readonly MigrationStep[] = [
  {
    from: 1,
    // Format 2 adds kinds 0x05–0x0f (users, permissions, topic permissions, vhost metadata and
    // limits, the "defaults seeded" marker). A format-1 store has none of them: nothing to
    // convert. Without the marker the broker seeds its default user on the next start, with
    // full permissions on every vhost the store holds, which is what format 1 allowed.
    // The version bump itself matters: a format-1 Warren must not open a store whose users
    // and permissions it would ignore.
    summary: 'access records (users, permissions, vhost metadata and limits) added',
    async run() {},
  },
  {
    from: 2,
    // Format 3 adds kinds 0x0a and 0x0b (policies and operator policies). A format-2 store
    // has none: nothing to convert. The bump keeps a format-2 Warren from opening a store
    // whose policies it would ignore.
    summary: 'policy records (policies and operator policies) added',
    async run() {},
  },
];

function versionValue(version: number): Buffer {
  const value = Buffer.allocUnsafe(4);
  value.writeUInt32BE(version, 0);
  return value;
}

/** Runs every step from `from` up to `to`, recording each version reached. */
export async function upgradeStore(db: Db, from: number, to: number, formatKey: Buffer): Promise<void> {
  for (let v = from; v < to; v++) {
    const step = MIGRATIONS.find((m) => m.from === v);
    if (step === undefined) throw new Error(`no upgrade step from store format ${v}`);
    await step.run(db);
    await db.put(formatKey, versionValue(v + 1), { sync: true });
  }
}
