import { AmqpChannelError } from '../protocol/errors.js';
import { fieldTypeName } from '../protocol/field-table.js';
import type { FieldTable } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';

/**
 * x-queue-type, validated as RabbitMQ 3.10 validates it (rabbit_amqqueue:check_declare_arguments
 * and each queue type's capabilities()). `classic` and `quorum` queues exist in Warren; `stream`
 * is known to RabbitMQ but refused here, as RabbitMQ before 3.9 refused it, until Warren has
 * streams (docs/differences.md).
 */
export type QueueType = 'classic' | 'quorum';

const KNOWN_QUEUE_TYPES = ['classic', 'quorum', 'stream'] as const;
type KnownQueueType = (typeof KNOWN_QUEUE_TYPES)[number];

/** The Erlang module RabbitMQ names in its errors ("… of queue type rabbit_quorum_queue"). */
const MODULE: Record<KnownQueueType, string> = {
  classic: 'rabbit_classic_queue',
  quorum: 'rabbit_quorum_queue',
  stream: 'rabbit_stream_queue',
};

/** capabilities() queue_arguments of each type (RabbitMQ 3.10): what a queue of the type accepts and compares on redeclare. */
const QUEUE_ARGUMENTS: Record<KnownQueueType, readonly string[]> = {
  classic: [
    'x-expires',
    'x-message-ttl',
    'x-dead-letter-exchange',
    'x-dead-letter-routing-key',
    'x-max-length',
    'x-max-length-bytes',
    'x-max-priority',
    'x-overflow',
    'x-queue-mode',
    'x-queue-version',
    'x-single-active-consumer',
    'x-queue-type',
    'x-queue-master-locator',
  ],
  quorum: [
    'x-dead-letter-exchange',
    'x-dead-letter-routing-key',
    'x-dead-letter-strategy',
    'x-expires',
    'x-max-length',
    'x-max-length-bytes',
    'x-max-in-memory-length',
    'x-max-in-memory-bytes',
    'x-overflow',
    'x-single-active-consumer',
    'x-queue-type',
    'x-quorum-initial-group-size',
    'x-delivery-limit',
    'x-message-ttl',
    'x-queue-leader-locator',
  ],
  stream: ['x-max-length-bytes', 'x-queue-type', 'x-max-age', 'x-stream-max-segment-size-bytes', 'x-initial-cluster-size', 'x-queue-leader-locator'],
};

/** capabilities() consumer_arguments of each type. */
const CONSUMER_ARGUMENTS: Record<KnownQueueType, readonly string[]> = {
  classic: ['x-cancel-on-ha-failover', 'x-priority', 'x-credit'],
  quorum: ['x-priority', 'x-credit'],
  stream: ['x-stream-offset', 'x-credit'],
};

const ALL_QUEUE_ARGUMENTS = new Set(Object.values(QUEUE_ARGUMENTS).flat());
const ALL_CONSUMER_ARGUMENTS = new Set(Object.values(CONSUMER_ARGUMENTS).flat());

function invalidArg(desc: string, key: string, reason: string): AmqpChannelError {
  return new AmqpChannelError(ReplyCode.PreconditionFailed, `invalid arg '${key}' for ${desc}: ${reason}`);
}

/** The queue type an x-queue-type argument names (classic when absent), or undefined when it names none. */
function namedType(args: FieldTable): KnownQueueType | undefined {
  const v = args.get('x-queue-type');
  if (v === undefined) return 'classic';
  if (v.type !== 'S') return undefined;
  const name = v.value.toString('utf8');
  return (KNOWN_QUEUE_TYPES as readonly string[]).includes(name) ? (name as KnownQueueType) : undefined;
}

/**
 * Validates x-queue-type (406 "unsupported queue type 'x'" or {unacceptable_type,T}, as
 * RabbitMQ) and returns the type; `stream` is refused with the text RabbitMQ gave before it had
 * streams.
 */
export function declaredQueueType(args: FieldTable, desc: string): QueueType {
  const v = args.get('x-queue-type');
  if (v === undefined) return 'classic';
  if (v.type !== 'S') throw invalidArg(desc, 'x-queue-type', `{unacceptable_type,${fieldTypeName(v.type)}}`);
  const name = v.value.toString('utf8');
  if (name === 'classic' || name === 'quorum') return name;
  // 'stream' included: Warren has no streams yet (docs/differences.md)
  throw invalidArg(desc, 'x-queue-type', `"unsupported queue type '${name}'"`);
}

/** Whether a queue of `type` takes argument `key` (only those are validated; the other types' ones are refused). */
export function takesQueueArgument(type: QueueType, key: string): boolean {
  return QUEUE_ARGUMENTS[type].includes(key);
}

/** The arguments compared when a queue of `type` is declared again (rabbit_amqqueue:assert_args_equivalence). */
export function comparedQueueArguments(type: QueueType): readonly string[] {
  return QUEUE_ARGUMENTS[type];
}

/**
 * rabbit_amqqueue:check_arguments_key: an argument that belongs to another queue type is
 * refused ("invalid arg 'x-max-priority' for queue 'q' in vhost '/' of queue type
 * rabbit_quorum_queue"); arguments no type knows are ignored, as in RabbitMQ.
 */
export function checkQueueArgumentKeys(type: QueueType, args: FieldTable, desc: string): void {
  for (const key of args.keys()) {
    if (ALL_QUEUE_ARGUMENTS.has(key) && !QUEUE_ARGUMENTS[type].includes(key)) {
      throw new AmqpChannelError(ReplyCode.PreconditionFailed, `invalid arg '${key}' for ${desc} of queue type ${MODULE[type]}`);
    }
  }
}

/** rabbit_channel: a server-named queue only for types that allow it (classic); checked before anything else. */
export function checkServerNamedAllowed(args: FieldTable): void {
  const type = namedType(args);
  if (type === 'quorum' || type === 'stream') {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, `Cannot declare a server-named queue for type ${MODULE[type]}`);
  }
}

/**
 * rabbit_quorum_queue:declare: a quorum queue is durable, shared and not auto-delete; the checks
 * run in RabbitMQ's order (auto-delete, exclusive, non-durable; exclusive queues count as
 * non-durable), after the arguments.
 */
export function checkQueueProperties(type: QueueType, desc: string, p: { durable: boolean; exclusive: boolean; autoDelete: boolean }): void {
  if (type !== 'quorum') return;
  const refuse = (property: string): never => {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, `invalid property '${property}' for ${desc}`);
  };
  if (p.autoDelete) refuse('auto-delete');
  if (p.exclusive) refuse('exclusive-owner');
  if (!p.durable) refuse('non-durable');
}

/**
 * rabbit_amqqueue:check_consume_arguments: a consumer argument of another queue type is
 * refused (x-stream-offset on a classic queue, x-cancel-on-ha-failover on a quorum queue), and
 * x-cancel-on-ha-failover must be a boolean. x-priority is validated by the consume itself.
 */
export function checkConsumerArguments(type: QueueType, args: FieldTable, desc: string): void {
  const failover = args.get('x-cancel-on-ha-failover');
  if (failover !== undefined && type === 'classic' && failover.type !== 't') {
    throw invalidArg(desc, 'x-cancel-on-ha-failover', `{unacceptable_type,${fieldTypeName(failover.type)}}`);
  }
  for (const key of args.keys()) {
    if (ALL_CONSUMER_ARGUMENTS.has(key) && !CONSUMER_ARGUMENTS[type].includes(key)) {
      throw new AmqpChannelError(ReplyCode.PreconditionFailed, `invalid arg '${key}' for ${desc} of queue type ${MODULE[type]}`);
    }
  }
}
