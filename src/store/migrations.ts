import { crc32c } from '@node-rs/crc32';
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
  {
    from: 3,
    // Format 4 puts a crc32c of each message value (exchange, routing key, properties, body)
    // in front of it, checked on every read. Every stored message is rewritten here, eagerly:
    // a value without a checksum is never accepted afterwards, so damage cannot pass for an
    // old record. Chunks of messages, each one atomic write with the key it reached, so an
    // interrupted upgrade resumes where it stopped (and never prefixes a value twice).
    summary: 'a checksum over each stored message (rewritten in place)',
    async run(db) {
      const MESSAGE = 0x10;
      const progressKey = Buffer.from([0x00, ...Buffer.from('upgrade-4-message', 'latin1')]);
      const CHUNK = 512;
      let after = await db.get(progressKey);
      for (;;) {
        const range = after === undefined ? { gte: Buffer.from([MESSAGE]) } : { gt: after };
        const rows = await db.iterator({ ...range, lt: Buffer.from([MESSAGE + 1]), limit: CHUNK }).all();
        if (rows.length === 0) break;
        const ops: Array<{ type: 'put'; key: Buffer; value: Buffer }> = [];
        for (const [key, old] of rows) {
          const value = Buffer.allocUnsafe(4 + old.length);
          old.copy(value, 4);
          value.writeUInt32BE(crc32c(old) >>> 0, 0);
          ops.push({ type: 'put', key, value });
        }
        after = rows[rows.length - 1]![0];
        ops.push({ type: 'put', key: progressKey, value: after });
        await db.batch(ops, { sync: true });
      }
      await db.del(progressKey, { sync: true });
    },
  },
  {
    from: 4,
    // Format 5 lets a message value be a 28-byte pointer to a record in a body file
    // (body-files.ts: big values are written there instead). Every format-4 value stays
    // valid as it is: nothing to convert. The bump keeps a format-4 Warren, which would
    // read a pointer as a damaged message, from opening a store that may hold them.
    summary: 'big message values may live in body files (bodies/)',
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
