import { DEFAULT_HASHING_ALGORITHM, hashPassword, isHashingAlgorithm, isValidPasswordHash } from '../auth/password-hash.js';
import { AmqpChannelError } from '../protocol/errors.js';
import { ReplyCode } from '../protocol/reply-code.js';
import type { PermissionRecord, TopicPermissionRecord, UserRecord, VhostLimitsRecord, VhostMetadataRecord } from '../store/access-records.js';
import { Completion } from './completion.js';
import { checkAdministrator } from './permissions.js';
import type { Actor } from './session.js';

/**
 * Users, vhosts, permissions, topic permissions and vhost limits: the administrative
 * operations (RabbitMQ: rabbitmqctl add_user…, the management API's /api/users…). Each one
 * needs the administrator tag, validates its input (406 PRECONDITION_FAILED for invalid
 * input, 404 NOT_FOUND for a missing user or vhost), changes the registry and the model,
 * and settles once the change is durable.
 */

export interface UserSettings {
  /** a clear-text password, hashed with rabbit_password_hashing_sha256 */
  readonly password?: string;
  /** or a RabbitMQ hash (base64 salt ‖ digest), e.g. from a definitions export; '' = no password */
  readonly passwordHash?: string;
  /** the hash's algorithm; RabbitMQ's definitions default to md5 when it is missing */
  readonly hashingAlgorithm?: string;
  /** administrator, monitoring, management, policymaker, impersonator, or any other */
  readonly tags?: readonly string[];
}

export interface PermissionSettings {
  readonly configure: string;
  readonly write: string;
  readonly read: string;
}

export interface TopicPermissionSettings {
  readonly exchange: string;
  readonly write: string;
  readonly read: string;
}

export interface VhostSettings {
  readonly description?: string;
  readonly tags?: readonly string[];
}

export interface VhostLimitSettings {
  /** -1 = no limit; undefined = leave as is (use clearVhostLimits to remove) */
  readonly maxConnections?: number;
  readonly maxQueues?: number;
}

export interface VhostInfo {
  readonly name: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly limits: VhostLimitsRecord | undefined;
}

function invalid(text: string): AmqpChannelError {
  return new AmqpChannelError(ReplyCode.PreconditionFailed, text);
}

function notFound(text: string): AmqpChannelError {
  return new AmqpChannelError(ReplyCode.NotFound, text);
}

function committed(actor: Actor): Completion<void> {
  return Completion.afterCommit<void>(undefined, actor.core.store);
}

function requireUser(actor: Actor, name: string): UserRecord {
  const u = actor.core.access.users.get(name);
  if (u === undefined) throw notFound(`no user '${name}'`);
  return u;
}

function requireVhost(actor: Actor, name: string): void {
  if (!actor.core.vhosts.has(name)) throw notFound(`no vhost '${name}'`);
}

function checkName(kind: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '') throw invalid(`${kind} name must be a non-empty string`);
  if (Buffer.byteLength(name) > 255) throw invalid(`${kind} name '${name.slice(0, 40)}…' is longer than 255 bytes`);
}

function checkTags(tags: unknown): readonly string[] {
  if (tags === undefined) return [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw invalid('tags must be a list of strings');
  return [...new Set((tags as string[]).map((t) => t.trim()).filter((t) => t !== ''))];
}

function checkPattern(what: string, pattern: unknown): string {
  if (typeof pattern !== 'string') throw invalid(`${what} must be a string (a regular expression)`);
  try {
    new RegExp(pattern);
  } catch (err) {
    throw invalid(`${what} '${pattern}' is not a valid regular expression: ${(err as Error).message}`);
  }
  return pattern;
}

function checkLimit(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < -1) {
    throw invalid(`${name} must be an integer, -1 for no limit`);
  }
  return value;
}

// ---- users

/** Creates a user, or replaces its password and tags (RabbitMQ's PUT /api/users/name). */
export function putUser(actor: Actor, name: string, settings: UserSettings): Completion<void> {
  checkAdministrator(actor);
  checkName('user', name);
  const tags = checkTags(settings.tags);
  let passwordHash: string;
  let hashingAlgorithm: string;
  if (settings.password !== undefined) {
    if (typeof settings.password !== 'string') throw invalid('password must be a string');
    hashingAlgorithm = DEFAULT_HASHING_ALGORITHM;
    passwordHash = hashPassword(settings.password, DEFAULT_HASHING_ALGORITHM);
  } else if (settings.passwordHash !== undefined) {
    hashingAlgorithm = settings.hashingAlgorithm ?? 'rabbit_password_hashing_md5';
    if (!isHashingAlgorithm(hashingAlgorithm)) throw invalid(`unknown hashing algorithm '${hashingAlgorithm}'`);
    if (typeof settings.passwordHash !== 'string' || !isValidPasswordHash(settings.passwordHash, hashingAlgorithm)) {
      throw invalid(`password_hash of user '${name}' is not a ${hashingAlgorithm} hash`);
    }
    passwordHash = settings.passwordHash;
  } else {
    // RabbitMQ: a user without a password can only log in without one (EXTERNAL); an update keeps it
    const existing = actor.core.access.users.get(name);
    passwordHash = existing?.passwordHash ?? '';
    hashingAlgorithm = existing?.hashingAlgorithm ?? DEFAULT_HASHING_ALGORITHM;
  }
  actor.core.access.putUser({ name, passwordHash, hashingAlgorithm, tags });
  return committed(actor);
}

/** Deletes a user with its permissions; its connections are closed (320 "user 'x' is deleted"). */
export function deleteUser(actor: Actor, name: string): Completion<void> {
  checkAdministrator(actor);
  requireUser(actor, name);
  actor.core.closeConnections((c) => c.username === name, `user '${name}' is deleted`);
  actor.core.access.deleteUser(name);
  return committed(actor);
}

export function listUsers(actor: Actor): UserRecord[] {
  checkAdministrator(actor);
  return [...actor.core.access.users.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// ---- vhosts

/** Creates a vhost, or updates its description and tags. */
export function putVhost(actor: Actor, name: string, settings: VhostSettings = {}): Completion<void> {
  checkAdministrator(actor);
  checkName('vhost', name);
  const tags = checkTags(settings.tags);
  const description = settings.description ?? actor.core.access.vhostMetadata.get(name)?.description ?? '';
  if (typeof description !== 'string') throw invalid('description must be a string');
  const core = actor.core;
  if (!core.vhosts.has(name)) {
    core.vhostObject(name);
    core.store.putVhost(name);
  }
  const record: VhostMetadataRecord = { vhost: name, description, tags: settings.tags === undefined ? (core.access.vhostMetadata.get(name)?.tags ?? []) : tags };
  core.access.setVhostMetadata(record);
  return committed(actor);
}

/**
 * Deletes a vhost and everything in it: its connections are closed first (320 "vhost 'x'
 * is deleted"), then its queues (with their messages), exchanges, bindings, permissions,
 * topic permissions, limits and metadata.
 */
export function deleteVhost(actor: Actor, name: string): Completion<void> {
  checkAdministrator(actor);
  requireVhost(actor, name);
  const core = actor.core;
  core.closeConnections((c) => c.vhostName === name, `vhost '${name}' is deleted`);
  core.vhosts.get(name)!.destroy();
  core.vhosts.delete(name);
  core.policies.forgetVhost(name);
  core.store.deleteVhost(name);
  core.access.forgetVhost(name);
  return committed(actor);
}

export function listVhosts(actor: Actor): VhostInfo[] {
  checkAdministrator(actor);
  const a = actor.core.access;
  return [...actor.core.vhosts.keys()].sort().map((name) => {
    const m = a.vhostMetadata.get(name);
    return { name, description: m?.description ?? '', tags: m?.tags ?? [], limits: a.vhostLimits.get(name) };
  });
}

// ---- permissions

export function setPermissions(actor: Actor, user: string, vhost: string, p: PermissionSettings): Completion<void> {
  checkAdministrator(actor);
  requireUser(actor, user);
  requireVhost(actor, vhost);
  actor.core.access.setPermission({
    user,
    vhost,
    configure: checkPattern('configure', p.configure),
    write: checkPattern('write', p.write),
    read: checkPattern('read', p.read),
  });
  return committed(actor);
}

export function clearPermissions(actor: Actor, user: string, vhost: string): Completion<void> {
  checkAdministrator(actor);
  if (!actor.core.access.clearPermission(user, vhost)) throw notFound(`no permissions for user '${user}' in vhost '${vhost}'`);
  return committed(actor);
}

export function listPermissions(actor: Actor): PermissionRecord[] {
  checkAdministrator(actor);
  return actor.core.access.allPermissions();
}

export function setTopicPermissions(actor: Actor, user: string, vhost: string, p: TopicPermissionSettings): Completion<void> {
  checkAdministrator(actor);
  requireUser(actor, user);
  requireVhost(actor, vhost);
  if (typeof p.exchange !== 'string') throw invalid('exchange must be a string');
  actor.core.access.setTopicPermission({ user, vhost, exchange: p.exchange, write: checkPattern('write', p.write), read: checkPattern('read', p.read) });
  return committed(actor);
}

/** Clears one exchange's topic permission, or every one of the user's in the vhost. */
export function clearTopicPermissions(actor: Actor, user: string, vhost: string, exchange?: string): Completion<void> {
  checkAdministrator(actor);
  if (!actor.core.access.clearTopicPermission(user, vhost, exchange)) {
    throw notFound(`no topic permissions for user '${user}' in vhost '${vhost}'`);
  }
  return committed(actor);
}

export function listTopicPermissions(actor: Actor): TopicPermissionRecord[] {
  checkAdministrator(actor);
  return actor.core.access.allTopicPermissions();
}

// ---- limits

/** Sets max-connections and/or max-queues of a vhost (RabbitMQ's vhost limits); -1 = no limit. */
export function setVhostLimits(actor: Actor, vhost: string, limits: VhostLimitSettings): Completion<void> {
  checkAdministrator(actor);
  requireVhost(actor, vhost);
  const current = actor.core.access.vhostLimits.get(vhost);
  const maxConnections = checkLimit('max-connections', limits.maxConnections) ?? current?.maxConnections;
  const maxQueues = checkLimit('max-queues', limits.maxQueues) ?? current?.maxQueues;
  actor.core.access.setVhostLimits({ vhost, maxConnections, maxQueues });
  return committed(actor);
}

/** Removes one limit (`max-connections` / `max-queues`) or all of them. */
export function clearVhostLimits(actor: Actor, vhost: string, limit?: 'max-connections' | 'max-queues'): Completion<void> {
  checkAdministrator(actor);
  requireVhost(actor, vhost);
  const current = actor.core.access.vhostLimits.get(vhost);
  actor.core.access.setVhostLimits({
    vhost,
    maxConnections: limit === 'max-queues' ? current?.maxConnections : undefined,
    maxQueues: limit === 'max-connections' ? current?.maxQueues : undefined,
  });
  return committed(actor);
}
