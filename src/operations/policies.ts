import { AmqpChannelError } from '../protocol/errors.js';
import { ReplyCode } from '../protocol/reply-code.js';
import type { PolicyRecord } from '../store/policy-records.js';
import { compilePolicy, policyDefinitionError, type CompiledPolicy, type PolicyApplyTo } from '../vhost/policy.js';
import { Completion } from './completion.js';
import type { Actor } from './session.js';

/**
 * Policies and operator policies (RabbitMQ's set_policy / set_operator_policy): stored,
 * and applied at once to the vhost's existing queues and exchanges. Policies need the
 * policymaker or administrator tag and access to the vhost; operator policies need
 * administrator.
 */
export interface PolicySettings {
  readonly pattern: unknown;
  readonly definition: unknown;
  readonly priority?: unknown;
  readonly applyTo?: unknown;
}

function invalid(text: string): AmqpChannelError {
  return new AmqpChannelError(ReplyCode.PreconditionFailed, text);
}

function checkMayChange(actor: Actor, vhost: string, operator: boolean): void {
  const u = actor.user;
  if (u.system === true) return;
  const tags = u.tags;
  if (operator ? !tags.includes('administrator') : !tags.includes('administrator') && !tags.includes('policymaker')) {
    throw new AmqpChannelError(ReplyCode.AccessRefused, `user '${u.name}' may not change ${operator ? 'operator policies' : 'policies'}`);
  }
  if (!tags.includes('administrator') && actor.core.access.permission(u.name, vhost) === undefined) {
    throw new AmqpChannelError(ReplyCode.AccessRefused, `access to vhost '${vhost}' refused for user '${u.name}'`);
  }
}

function requireVhost(actor: Actor, vhost: string): void {
  if (!actor.core.vhosts.has(vhost)) throw new AmqpChannelError(ReplyCode.NotFound, `no vhost '${vhost}'`);
}

/** Creates or replaces a policy; every queue and exchange of the vhost follows at once. */
export function putPolicy(actor: Actor, vhost: string, name: string, s: PolicySettings, operator = false): Completion<void> {
  checkMayChange(actor, vhost, operator);
  requireVhost(actor, vhost);
  if (typeof name !== 'string' || name === '') throw invalid('a policy needs a name');
  if (typeof s.pattern !== 'string') throw invalid('pattern must be a string');
  try {
    new RegExp(s.pattern);
  } catch {
    throw invalid(`pattern '${s.pattern}' is not a valid regular expression`);
  }
  const applyTo = (s.applyTo ?? 'all') as PolicyApplyTo;
  if (applyTo !== 'all' && applyTo !== 'queues' && applyTo !== 'exchanges') throw invalid(`apply-to '${String(s.applyTo)}' is not queues, exchanges or all`);
  const priority = s.priority === undefined || s.priority === null || s.priority === '' ? 0 : Number(s.priority);
  if (!Number.isSafeInteger(priority)) throw invalid('priority must be an integer');
  if (typeof s.definition !== 'object' || s.definition === null || Array.isArray(s.definition)) throw invalid('definition must be an object');
  const definition = s.definition as Record<string, unknown>;
  const error = policyDefinitionError(definition, operator);
  if (error !== null) throw invalid(`Validation failed\n\n${error}`.replace('\n\n', ': '));
  const record: PolicyRecord = { vhost, name, pattern: s.pattern, applyTo, priority, definition };
  actor.core.policies.put(record, operator);
  return Completion.of<void>(undefined, true, actor.core.store);
}

export function deletePolicy(actor: Actor, vhost: string, name: string, operator = false): Completion<void> {
  checkMayChange(actor, vhost, operator);
  if (!actor.core.policies.delete(vhost, name, operator)) throw new AmqpChannelError(ReplyCode.NotFound, `no policy '${name}' in vhost '${vhost}'`);
  return Completion.of<void>(undefined, true, actor.core.store);
}

/** Policies of one vhost or of all (ordered by vhost, then name). */
export function listPolicies(actor: Actor, vhost: string | null, operator = false): CompiledPolicy[] {
  void actor;
  return actor.core.policies.list(vhost, operator);
}

export { compilePolicy };
