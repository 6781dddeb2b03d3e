import type { FieldTable, FieldValue } from '../protocol/field-types.js';

/**
 * RabbitMQ's policies and operator policies: per vhost, a name pattern (a regular
 * expression), what they apply to, a priority and a definition (keys without `x-`). Only
 * one policy applies to a queue or exchange (the matching one with the highest priority),
 * and one operator policy; their definitions are then merged with the object's own
 * arguments by RabbitMQ's rules (rabbit_policy, rabbit_amqqueue_process:process_args_policy):
 *
 * - expires, message-ttl, max-length, max-length-bytes, delivery-limit: the smallest of
 *   the argument, the policy and the operator policy (delivery-limit only reaches quorum
 *   queues: a key the queue type does not take is ignored, as in RabbitMQ);
 * - dead-letter-exchange, dead-letter-routing-key, overflow, queue-mode, alternate-exchange:
 *   the argument when there is one, else the policy's (operator policies cannot set them).
 */
export type PolicyApplyTo = 'queues' | 'exchanges' | 'all';

export interface PolicyDefinition {
  readonly vhost: string;
  readonly name: string;
  readonly pattern: string;
  readonly applyTo: PolicyApplyTo;
  readonly priority: number;
  /** key → JSON value (numbers, strings, booleans) */
  readonly definition: Readonly<Record<string, unknown>>;
}

export interface CompiledPolicy extends PolicyDefinition {
  readonly regex: RegExp;
}

/** Keys Warren applies, with how an argument and a policy value combine. */
const MIN_KEYS = new Set(['expires', 'message-ttl', 'max-length', 'max-length-bytes', 'delivery-limit']);
const ARG_WINS_QUEUE_KEYS = new Set(['dead-letter-exchange', 'dead-letter-routing-key', 'overflow', 'queue-mode']);
export const QUEUE_POLICY_KEYS: ReadonlySet<string> = new Set([...MIN_KEYS, ...ARG_WINS_QUEUE_KEYS]);
export const EXCHANGE_POLICY_KEYS: ReadonlySet<string> = new Set(['alternate-exchange']);
/** What an operator policy may set (RabbitMQ 3.10's operator_policy_validator keys Warren implements). */
export const OPERATOR_POLICY_KEYS: ReadonlySet<string> = new Set(['expires', 'message-ttl', 'max-length', 'max-length-bytes']);

/** Why a policy definition is invalid (RabbitMQ's validators), or null. */
export function policyDefinitionError(definition: Readonly<Record<string, unknown>>, operator: boolean): string | null {
  const keys = Object.keys(definition);
  if (keys.length === 0) return 'the definition is empty';
  for (const k of keys) {
    const v = definition[k];
    const allowed = operator ? OPERATOR_POLICY_KEYS : new Set([...QUEUE_POLICY_KEYS, ...EXCHANGE_POLICY_KEYS]);
    if (!allowed.has(k)) return `[{<<"${k}">>,${JSON.stringify(v)}}] are not recognised policy settings`;
    switch (k) {
      case 'expires':
        if (!Number.isSafeInteger(v) || (v as number) < 1) return `${String(v)} is not a valid expiry (must be a positive integer)`;
        break;
      case 'message-ttl':
      case 'max-length':
      case 'max-length-bytes':
        if (!Number.isSafeInteger(v) || (v as number) < 0) return `${String(v)} is not a valid ${k} (must be a non-negative integer)`;
        break;
      case 'delivery-limit':
        if (!Number.isSafeInteger(v) || (v as number) < 0) return `${String(v)} is not a valid delivery limit`;
        break;
      case 'overflow':
        if (v !== 'drop-head' && v !== 'reject-publish' && v !== 'reject-publish-dlx') return `${String(v)} is not a valid overflow value`;
        break;
      case 'queue-mode':
        if (v !== 'default' && v !== 'lazy') return `${String(v)} is not a valid queue-mode value`;
        break;
      default:
        if (typeof v !== 'string') return `${JSON.stringify(v)} is not a valid ${k} (must be a string)`;
    }
  }
  return null;
}

export function compilePolicy(p: PolicyDefinition): CompiledPolicy {
  return { ...p, regex: new RegExp(p.pattern) };
}

/** The policy that applies to an object: matching name and kind, highest priority (then name, for a stable choice). */
export function matchingPolicy(policies: Iterable<CompiledPolicy>, kind: 'queue' | 'exchange', name: string): CompiledPolicy | undefined {
  let best: CompiledPolicy | undefined;
  for (const p of policies) {
    if (p.applyTo !== 'all' && p.applyTo !== (kind === 'queue' ? 'queues' : 'exchanges')) continue;
    if (!p.regex.test(name)) continue;
    if (best === undefined || p.priority > best.priority || (p.priority === best.priority && p.name < best.name)) best = p;
  }
  return best;
}

function numeric(v: FieldValue | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v.value === 'number') return v.value;
  if (typeof v.value === 'bigint') return Number(v.value);
  return undefined;
}

/**
 * The arguments a queue or exchange runs with: its declared arguments combined with its
 * policy and operator policy by RabbitMQ's rules (see above). The declared arguments are
 * what equivalence checks and the API show; these are what the object does.
 */
export function effectiveArguments(
  kind: 'queue' | 'exchange',
  args: FieldTable,
  policy: CompiledPolicy | undefined,
  operator: CompiledPolicy | undefined,
): FieldTable {
  if (policy === undefined && operator === undefined) return args;
  const out: FieldTable = new Map(args);
  const keys = kind === 'queue' ? QUEUE_POLICY_KEYS : EXCHANGE_POLICY_KEYS;
  const argName = (k: string) => (kind === 'queue' ? `x-${k}` : k);
  for (const k of keys) {
    const a = args.get(argName(k));
    const pv = policy?.definition[k];
    const ov = kind === 'queue' ? operator?.definition[k] : undefined;
    if (MIN_KEYS.has(k)) {
      const candidates = [numeric(a), typeof pv === 'number' ? pv : undefined, typeof ov === 'number' ? ov : undefined].filter(
        (x): x is number => x !== undefined,
      );
      if (candidates.length === 0) continue;
      const min = Math.min(...candidates);
      if (a !== undefined && numeric(a) === min) continue; // the argument holds, with its type
      out.set(argName(k), { type: 'l', value: BigInt(min) });
    } else if (a === undefined && typeof pv === 'string') {
      out.set(argName(k), { type: 'S', value: Buffer.from(pv, 'utf8') });
    }
  }
  return out;
}
