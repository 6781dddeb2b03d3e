import { AmqpChannelError } from '../protocol/errors.js';
import type { FieldTable, FieldValue } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';
import { fieldTypeName } from '../vhost/equivalence.js';

export type Overflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

/** The queue arguments that change behaviour, parsed once at declare time. */
export interface QueueLimits {
  /** x-max-length: ready messages kept; Infinity when unset */
  readonly maxLength: number;
  /** x-max-length-bytes: sum of ready bodies kept; Infinity when unset */
  readonly maxLengthBytes: number;
  readonly overflow: Overflow;
}

const INTEGER_TAGS = new Set(['b', 'B', 's', 'u', 'I', 'i', 'l']);

function invalid(desc: string, key: string, reason: string): never {
  throw new AmqpChannelError(ReplyCode.PreconditionFailed, `invalid arg '${key}' for ${desc}: ${reason}`);
}

function nonNegativeInt(v: FieldValue, desc: string, key: string): number {
  if (!INTEGER_TAGS.has(v.type)) invalid(desc, key, `"expected integer, got ${fieldTypeName(v.type)}"`);
  const n = Number(v.value as number | bigint);
  if (n < 0) invalid(desc, key, `{value_negative,${n}}`);
  return n;
}

/** Validates as RabbitMQ does (406 naming the argument) and extracts the limits. */
export function parseQueueArguments(args: FieldTable, desc: string): QueueLimits {
  let maxLength = Infinity;
  let maxLengthBytes = Infinity;
  let overflow: Overflow = 'drop-head';
  const ml = args.get('x-max-length');
  if (ml !== undefined) maxLength = nonNegativeInt(ml, desc, 'x-max-length');
  const mlb = args.get('x-max-length-bytes');
  if (mlb !== undefined) maxLengthBytes = nonNegativeInt(mlb, desc, 'x-max-length-bytes');
  const ttl = args.get('x-message-ttl');
  if (ttl !== undefined) nonNegativeInt(ttl, desc, 'x-message-ttl');
  const ov = args.get('x-overflow');
  if (ov !== undefined) {
    const s = ov.type === 'S' ? ov.value.toString('utf8') : '';
    if (s !== 'drop-head' && s !== 'reject-publish' && s !== 'reject-publish-dlx') {
      invalid(desc, 'x-overflow', `{unacceptable_value,${ov.type === 'S' ? s : String(ov.value)}}`);
    }
    overflow = s;
  }
  return { maxLength, maxLengthBytes, overflow };
}
