/**
 * A value given as parts that are written one after another and never joined in memory:
 * a big message's head (checksum, exchange, routing key, properties) and its body, which
 * the body files write with one writev (body-files.ts). Joining 64 KiB bodies into fresh
 * buffers doubled the broker's allocation under a flood of them, and with it V8's
 * collections (external memory pressure starts one every 64 MiB allocated).
 */
export class ValueParts {
  constructor(
    readonly parts: readonly Buffer[],
    readonly length: number,
    /** no one waits for this value to be on disk: a write need not sync it (MessageRecord.unconfirmed) */
    readonly unawaited = false,
  ) {}

  /** The value in one buffer (for a write that needs it whole: LevelDB, replication). */
  join(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

/** A put's value: in one buffer, or in parts. */
export type PutValue = Buffer | ValueParts;
