import type { BrokerView } from '../monitoring/broker-view.js';
import { loginWithPassword } from '../operations/authenticate.js';
import type { AuthenticatedUser } from '../operations/session.js';

/** Who a request acts as: the user as the operations layer knows it (name and tags). */
export type Principal = AuthenticatedUser;

/**
 * HTTP basic authentication against Warren's users (the one place the management API asks
 * who someone is): the password must match its stored hash, and a loopback-only user (guest)
 * must come from the local machine, as RabbitMQ's loopback_users applies to the API too.
 */
export function authenticate(view: BrokerView, username: string, password: string, remoteAddress: string | undefined): Principal | null {
  const result = loginWithPassword(view.core, username, password, remoteAddress);
  return result.ok ? result.user : null;
}

/** RabbitMQ: any of these tags gives access to the management API; no tag, no access. */
const MANAGEMENT_TAGS = new Set(['management', 'policymaker', 'monitoring', 'administrator']);

export function isManagementUser(p: Principal): boolean {
  return p.tags.some((t) => MANAGEMENT_TAGS.has(t));
}

/** Sees every vhost and every user's connections (monitoring and administrator). */
export function isMonitor(p: Principal): boolean {
  return p.tags.includes('administrator') || p.tags.includes('monitoring');
}

export function isAdministrator(p: Principal): boolean {
  return p.tags.includes('administrator');
}

/** policymaker (and administrator) may change policies and parameters in their vhosts. */
export function isPolicymaker(p: Principal): boolean {
  return p.tags.includes('administrator') || p.tags.includes('policymaker');
}

/**
 * Whether the principal may see a vhost's objects: monitors see all; other management users
 * see the vhosts they have a permission on (RabbitMQ's rabbit_mgmt_util:user_matches_vhost).
 */
export function canAccessVhost(view: BrokerView, p: Principal, vhost: string): boolean {
  if (isMonitor(p)) return true;
  return isManagementUser(p) && view.core.access.permission(p.name, vhost) !== undefined;
}

/** Whether the principal may see (and close) a connection of `user`: its own, or any for a monitor. */
export function canSeeUser(p: Principal, user: string): boolean {
  return isMonitor(p) || p.name === user;
}
