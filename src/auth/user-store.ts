import { timingSafeEqual } from 'node:crypto';
import type { UserConfig } from '../config/config.js';

/** Outcome of a login attempt; `reason` is for the log, never sent to the client. */
export type LoginResult = { ok: true; username: string } | { ok: false; username: string; reason: string };

/**
 * 127.0.0.0/8 or ::1 (also IPv4-mapped). An unknown address (a socket reset before it was
 * accepted, an in-memory duplex) is not loopback: a loopback-only user is refused.
 */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Users and their passwords (from config). */
export class UserStore {
  private readonly users = new Map<string, UserConfig>();

  constructor(users: readonly UserConfig[]) {
    for (const u of users) this.users.set(u.username, u);
  }

  /** RabbitMQ: a loopback-only user (guest by default) may only connect from localhost. */
  login(username: string, password: string, remoteAddress: string | undefined): LoginResult {
    const user = this.users.get(username);
    if (user === undefined || !sameSecret(user.password, password)) {
      return { ok: false, username, reason: 'invalid credentials' };
    }
    if (user.loopbackOnly && !isLoopback(remoteAddress)) {
      return { ok: false, username, reason: `user '${username}' can only connect via localhost` };
    }
    return { ok: true, username };
  }
}
