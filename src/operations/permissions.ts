import { AmqpChannelError, AmqpConnectionError } from '../protocol/errors.js';
import { ReplyCode } from '../protocol/reply-code.js';
import type { Exchange } from '../vhost/exchange.js';
import type { Vhost } from '../vhost/vhost.js';
import type { Core } from './core.js';
import type { Actor, AuthenticatedUser, Session } from './session.js';

/**
 * The one place that decides access, as RabbitMQ's internal authorisation backend does
 * (rabbit_access_control + rabbit_auth_backend_internal). Called only from operations/.
 *
 *   configure  declare (not passive) or delete a queue or exchange
 *   write      queue.bind: the queue; exchange.bind: the destination; publish: the exchange
 *   read       queue.bind: the exchange; exchange.bind: the source; consume, get, purge: the queue
 *
 * The default exchange is the resource `amq.default`. A refusal is 403 ACCESS_REFUSED with
 * RabbitMQ's text; connection.open to a vhost without permission (or unknown) is 530.
 */
export type ResourcePermission = 'configure' | 'write' | 'read';
export type ResourceKind = 'queue' | 'exchange';

/** The resource name RabbitMQ checks: the default exchange is `amq.default`. */
export function resourceName(kind: ResourceKind, name: string): string {
  return kind === 'exchange' && name === '' ? 'amq.default' : name;
}

export function isPermitted(core: Core, user: AuthenticatedUser, vhost: string, kind: ResourceKind, name: string, permission: ResourcePermission): boolean {
  if (user.system === true) return true;
  const p = core.access.permission(user.name, vhost);
  return p !== undefined && p[permission].test(resourceName(kind, name));
}

export function checkResource(s: Session, kind: ResourceKind, name: string, permission: ResourcePermission): void {
  if (!isPermitted(s.core, s.user, s.vhost.name, kind, name, permission)) {
    throw new AmqpChannelError(
      ReplyCode.AccessRefused,
      `access to ${kind} '${resourceName(kind, name)}' in vhost '${s.vhost.name}' refused for user '${s.user.name}'`,
    );
  }
}

/** The topic permission pattern that applies to publishing or binding on `exchange`, or null when none does. */
export function topicPattern(s: Session, exchange: Exchange, permission: 'write' | 'read'): RegExp | null {
  // RabbitMQ: only exchanges of type topic, and only when the user has a topic permission for it
  if (exchange.type !== 'topic' || s.user.system === true) return null;
  const t = s.core.access.topicPermission(s.user.name, s.vhost.name, exchange.name);
  return t === undefined ? null : t[permission];
}

export function topicRefused(s: Session, exchange: Exchange, routingKey: string): AmqpChannelError {
  return new AmqpChannelError(
    ReplyCode.AccessRefused,
    `access to topic '${routingKey}' in exchange '${exchange.name}' in vhost '${s.vhost.name}' refused for user '${s.user.name}'`,
  );
}

export function checkTopic(s: Session, exchange: Exchange, routingKey: string, permission: 'write' | 'read'): void {
  const pattern = topicPattern(s, exchange, permission);
  if (pattern !== null && !pattern.test(routingKey)) throw topicRefused(s, exchange, routingKey);
}

/**
 * connection.open: the vhost must exist (530 "vhost x not found", as RabbitMQ 3.10 says) and
 * the user must have a permission on it, any (530 "access to vhost 'x' refused for user 'u'").
 */
export function checkVhostAccess(core: Core, user: AuthenticatedUser, vhostName: string): Vhost {
  const vhost = core.vhosts.get(vhostName);
  if (vhost === undefined) throw new AmqpConnectionError(ReplyCode.NotAllowed, `vhost ${vhostName} not found`, 10, 40);
  if (user.system !== true && core.access.permission(user.name, vhostName) === undefined) {
    throw new AmqpConnectionError(ReplyCode.NotAllowed, `access to vhost '${vhostName}' refused for user '${user.name}'`, 10, 40);
  }
  return vhost;
}

/** Administrative operations (users, vhosts, permissions, limits) need the administrator tag. */
export function checkAdministrator(actor: Actor): void {
  if (actor.user.system === true || actor.user.tags.includes('administrator')) return;
  throw new AmqpChannelError(ReplyCode.AccessRefused, `user '${actor.user.name}' is not an administrator`);
}

/** RabbitMQ: a message's user_id must be the authenticated user, unless the user has the impersonator tag. */
export function mayImpersonate(user: AuthenticatedUser): boolean {
  return user.system === true || user.tags.includes('impersonator');
}
