import { AmqpChannelError } from '../protocol/errors.js';
import type { FieldTable, FieldValue } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';
import { fieldTypeName } from '../protocol/field-table.js';
import { checkQueueArgumentKeys, declaredQueueType, takesQueueArgument, type QueueType } from './queue-type.js';

export type Overflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

/** The queue arguments that change behaviour, parsed and validated once at declare time. */
export interface QueueLimits {
  /** x-queue-type (classic when absent) */
  readonly queueType: QueueType;
  /** x-delivery-limit of a quorum queue: returns a message survives; undefined = no limit (classic queues never have one) */
  readonly deliveryLimit: number | undefined;
  /** x-max-length: ready messages kept; Infinity when unset */
  readonly maxLength: number;
  /** x-max-length-bytes: sum of ready bodies kept; Infinity when unset */
  readonly maxLengthBytes: number;
  readonly overflow: Overflow;
  /** x-message-ttl in ms; undefined when unset */
  readonly messageTtl: number | undefined;
  /** x-expires in ms; undefined when unset */
  readonly expires: number | undefined;
  /** x-dead-letter-exchange; undefined when unset ("" is the default exchange) */
  readonly deadLetterExchange: string | undefined;
  readonly deadLetterRoutingKey: string | undefined;
  /** x-max-priority: 0 = not a priority queue */
  readonly maxPriority: number;
  readonly singleActiveConsumer: boolean;
  /** x-consumer-timeout (ms; RabbitMQ 3.12+): overrides the broker's consumer timeout for this queue */
  readonly consumerTimeout: number | undefined;
}

const INTEGER_TAGS = new Set(['b', 'B', 's', 'u', 'I', 'i', 'l']);
/** RabbitMQ: TTLs and expiry are capped at what an Erlang timer takes (rabbit_misc:check_expiry) */
const MAX_EXPIRY = 2 ** 32 - 1; // ms, ~49.7 days: larger values are refused

function invalid(desc: string, key: string, reason: string): never {
  throw new AmqpChannelError(ReplyCode.PreconditionFailed, `invalid arg '${key}' for ${desc}: ${reason}`);
}

function integer(v: FieldValue, desc: string, key: string): number {
  if (!INTEGER_TAGS.has(v.type)) invalid(desc, key, `"expected integer, got ${fieldTypeName(v.type)}"`);
  return Number(v.value as number | bigint);
}

function nonNegativeInt(v: FieldValue, desc: string, key: string): number {
  const n = integer(v, desc, key);
  if (n < 0) invalid(desc, key, `{value_negative,${n}}`);
  return n;
}

function string(v: FieldValue, desc: string, key: string): string {
  if (v.type !== 'S') invalid(desc, key, `"expected string, got ${fieldTypeName(v.type)}"`);
  return v.value.toString('utf8');
}

/** basic.consume x-priority: an integer (RabbitMQ validates it against the queue, 406 naming the argument). */
export function parseConsumerPriority(args: FieldTable, desc: string): number {
  const v = args.get('x-priority');
  return v === undefined ? 0 : integer(v, desc, 'x-priority');
}

/**
 * Validates a new queue's arguments as RabbitMQ 3.10 does (406 naming the argument) and extracts
 * what the queue needs. RabbitMQ's order: the dead-letter exchange's type (rabbit_channel), then
 * x-queue-type, then each argument the queue type takes, in rabbit_amqqueue:declare_args() order
 * (the other types' arguments are not validated but refused), then Warren's own x-consumer-timeout.
 */
export function parseQueueArguments(args: FieldTable, desc: string): QueueLimits {
  const dlx = args.get('x-dead-letter-exchange');
  if (dlx !== undefined && dlx.type !== 'S') {
    // RabbitMQ words this one differently from the other argument errors
    throw new AmqpChannelError(
      ReplyCode.PreconditionFailed,
      `invalid type '${fieldTypeName(dlx.type)}' for arg 'x-dead-letter-exchange' in ${desc}`,
    );
  }
  const queueType = declaredQueueType(args, desc);
  const get = (k: string): FieldValue | undefined => (takesQueueArgument(queueType, k) ? args.get(k) : undefined);
  let maxLength = Infinity;
  let maxLengthBytes = Infinity;
  let overflow: Overflow = 'drop-head';
  let messageTtl: number | undefined;
  let expires: number | undefined;
  let maxPriority = 0;
  let singleActiveConsumer = false;

  const exp = get('x-expires');
  if (exp !== undefined) {
    expires = integer(exp, desc, 'x-expires');
    if (expires === 0) invalid(desc, 'x-expires', `{value_zero,0}`);
    if (expires < 0) invalid(desc, 'x-expires', `{value_negative,${expires}}`);
    if (expires > MAX_EXPIRY) invalid(desc, 'x-expires', `{value_too_large,${expires},${MAX_EXPIRY}}`);
  }
  const ttl = get('x-message-ttl');
  if (ttl !== undefined) {
    messageTtl = nonNegativeInt(ttl, desc, 'x-message-ttl');
    if (messageTtl > MAX_EXPIRY) invalid(desc, 'x-message-ttl', `{value_too_large,${messageTtl},${MAX_EXPIRY}}`);
  }
  const deadLetterExchange = dlx === undefined ? undefined : string(dlx, desc, 'x-dead-letter-exchange');
  const dlrk = get('x-dead-letter-routing-key');
  if (dlrk !== undefined && dlrk.type !== 'S') invalid(desc, 'x-dead-letter-routing-key', `{unacceptable_type,${fieldTypeName(dlrk.type)}}`);
  const deadLetterRoutingKey = dlrk === undefined ? undefined : string(dlrk, desc, 'x-dead-letter-routing-key');
  if (deadLetterRoutingKey !== undefined && deadLetterExchange === undefined) {
    invalid(desc, 'x-dead-letter-routing-key', 'routing_key_but_no_dlx_defined');
  }
  oneOf(get('x-dead-letter-strategy'), desc, 'x-dead-letter-strategy', ['at-most-once', 'at-least-once'], () => 'invalid_dlx_strategy');
  const ml = get('x-max-length');
  if (ml !== undefined) maxLength = nonNegativeInt(ml, desc, 'x-max-length');
  const mlb = get('x-max-length-bytes');
  if (mlb !== undefined) maxLengthBytes = nonNegativeInt(mlb, desc, 'x-max-length-bytes');
  // quorum queues' in-memory limits: Warren keeps a memory window of its own (accepted, validated, unused)
  for (const key of ['x-max-in-memory-length', 'x-max-in-memory-bytes']) {
    const v = get(key);
    if (v !== undefined) nonNegativeInt(v, desc, key);
  }
  const mp = get('x-max-priority');
  if (mp !== undefined) {
    maxPriority = nonNegativeInt(mp, desc, 'x-max-priority');
    if (maxPriority > 255) invalid(desc, 'x-max-priority', `{max_value_exceeded,${maxPriority}}`);
  }
  const ov = get('x-overflow');
  if (ov !== undefined) {
    if (ov.type !== 'S') invalid(desc, 'x-overflow', `{unacceptable_type,${fieldTypeName(ov.type)}}`);
    const s = ov.value.toString('utf8');
    if (s !== 'drop-head' && s !== 'reject-publish' && s !== 'reject-publish-dlx') invalid(desc, 'x-overflow', 'invalid_overflow');
    // RabbitMQ 3.10's quorum queues do not do reject-publish-dlx: they log a warning and drop the head
    overflow = queueType === 'quorum' && s === 'reject-publish-dlx' ? 'drop-head' : s;
  }
  oneOf(get('x-queue-mode'), desc, 'x-queue-mode', ['default', 'lazy'], (m) => `"unsupported queue mode '${m}'"`);
  const qv = get('x-queue-version');
  if (qv !== undefined) {
    const n = nonNegativeInt(qv, desc, 'x-queue-version');
    if (n !== 1 && n !== 2) invalid(desc, 'x-queue-version', `"unsupported queue version '${n}'"`);
  }
  const sac = get('x-single-active-consumer');
  if (sac !== undefined) {
    if (sac.type !== 't') invalid(desc, 'x-single-active-consumer', `{unacceptable_type,${fieldTypeName(sac.type)}}`);
    singleActiveConsumer = sac.value;
  }
  const groupSize = get('x-quorum-initial-group-size');
  if (groupSize !== undefined && nonNegativeInt(groupSize, desc, 'x-quorum-initial-group-size') === 0) {
    invalid(desc, 'x-quorum-initial-group-size', '{value_zero,0}');
  }
  oneOf(get('x-queue-leader-locator'), desc, 'x-queue-leader-locator', LEADER_LOCATORS, () => 'invalid_queue_locator_arg');
  checkQueueArgumentKeys(queueType, args, desc);
  const ct = args.get('x-consumer-timeout');
  const consumerTimeout = ct === undefined ? undefined : nonNegativeInt(ct, desc, 'x-consumer-timeout');
  return {
    queueType,
    maxLength,
    maxLengthBytes,
    overflow,
    messageTtl,
    expires,
    deadLetterExchange,
    deadLetterRoutingKey,
    maxPriority,
    singleActiveConsumer,
    consumerTimeout,
    deliveryLimit: queueType === 'quorum' ? parseDeliveryLimit(args.get('x-delivery-limit')) : undefined,
  };
}

/** rabbit_queue_location:queue_leader_locators() in 3.10 (the last two are deprecated aliases). */
const LEADER_LOCATORS = ['client-local', 'balanced', 'random', 'least-leaders'];

/** A string argument with a fixed set of values: {unacceptable_type,T} for another type, `reason(value)` for another value. */
function oneOf(v: FieldValue | undefined, desc: string, key: string, values: readonly string[], reason: (value: string) => string): void {
  if (v === undefined) return;
  if (v.type !== 'S') invalid(desc, key, `{unacceptable_type,${fieldTypeName(v.type)}}`);
  const s = v.value.toString('utf8');
  if (!values.includes(s)) invalid(desc, key, reason(s));
}

/**
 * x-delivery-limit of a quorum queue. RabbitMQ does not validate it: an integer is the limit
 * (a message returned more often is dead-lettered or dropped; 0 or less: at its first return),
 * any other value compares as no limit in rabbit_fifo.
 */
function parseDeliveryLimit(v: FieldValue | undefined): number | undefined {
  if (v === undefined || !INTEGER_TAGS.has(v.type)) return undefined;
  return Number(v.value as number | bigint);
}
