import { EXTERNAL, PASSWORD_MECHANISMS, parseSaslResponse } from '../auth/sasl.js';
import { isHashingAlgorithm, verifyPassword } from '../auth/password-hash.js';
import { AmqpConnectionError } from '../protocol/errors.js';
import { ReplyCode } from '../protocol/reply-code.js';
import type { ClientConnection, Core } from './core.js';
import { checkVhostAccess } from './permissions.js';
import { Session, type AuthenticatedUser } from './session.js';

/** What is known of the peer before it logs in. */
export interface Peer {
  /** undefined for in-process duplex pairs and reset sockets (not loopback) */
  readonly address: string | undefined;
  /** the login name of the verified TLS client certificate (EXTERNAL), or null */
  readonly certificateLogin: string | null;
}

export type LoginResult =
  | { readonly ok: true; readonly user: AuthenticatedUser; readonly mechanism: string }
  /** `reason` is for the log, never sent to the client */
  | { readonly ok: false; readonly username: string; readonly reason: string };

/** Mechanisms offered in connection.start: EXTERNAL only with a verified client certificate (RabbitMQ). */
export function saslMechanisms(peer: Peer): string[] {
  return peer.certificateLogin === null ? [...PASSWORD_MECHANISMS] : [...PASSWORD_MECHANISMS, EXTERNAL];
}

/**
 * 127.0.0.0/8 or ::1 (also IPv4-mapped). An unknown address (a socket reset before it was
 * accepted, an in-memory duplex) is not loopback: a loopback-only user is refused.
 */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function refused(username: string, reason: string): LoginResult {
  return { ok: false, username, reason };
}

/**
 * connection.start-ok: the SASL exchange. An unknown mechanism is a 503 connection error
 * (thrown); refused credentials are a result, answered by the front end with RabbitMQ's
 * 403 (authentication_failure_close) or a closed socket.
 */
export function authenticate(core: Core, mechanism: string, response: Buffer, peer: Peer): LoginResult {
  if (!saslMechanisms(peer).includes(mechanism)) {
    throw new AmqpConnectionError(ReplyCode.CommandInvalid, `unknown authentication mechanism '${mechanism}'`, 10, 11);
  }
  if (mechanism === EXTERNAL) {
    // rabbitmq_auth_mechanism_ssl: the certificate names the user; no password is checked
    const username = peer.certificateLogin!;
    if (!core.access.users.has(username)) return refused(username, `user '${username}' from the client certificate does not exist`);
    return admitted(core, username, mechanism, peer.address);
  }
  const creds = parseSaslResponse(mechanism, response);
  if (creds === null) return refused('', 'malformed SASL response');
  return loginWithPassword(core, creds.username, creds.password, peer.address, mechanism);
}

/**
 * A user name and password, from any front end (SASL PLAIN/AMQPLAIN here, HTTP basic auth in
 * the management API): the password must match and a loopback-only user must be local.
 */
export function loginWithPassword(core: Core, username: string, password: string, address: string | undefined, mechanism = 'PLAIN'): LoginResult {
  if (!checkPassword(core, username, password)) return refused(username, 'invalid credentials');
  return admitted(core, username, mechanism, address);
}

function admitted(core: Core, username: string, mechanism: string, address: string | undefined): LoginResult {
  if (core.loopbackUsers.has(username) && !isLoopback(address)) {
    return refused(username, `user '${username}' can only connect via localhost`);
  }
  const record = core.access.users.get(username)!;
  return { ok: true, user: { name: username, tags: record.tags }, mechanism };
}

function checkPassword(core: Core, username: string, password: string): boolean {
  const user = core.access.users.get(username);
  if (user === undefined || !isHashingAlgorithm(user.hashingAlgorithm)) return false;
  return verifyPassword(password, user.passwordHash, user.hashingAlgorithm);
}

/**
 * connection.update-secret (RabbitMQ 3.8+): a client refreshing its credentials. The user must
 * still exist and, when it logged in with a password, the new secret must be its current
 * password (so a password rotated by an operator can be taken over by live connections).
 * Refused → 530 "New secret was refused by one of the backends".
 */
export function updateSecret(core: Core, user: AuthenticatedUser, mechanism: string, secret: Buffer): void {
  const ok = core.access.users.has(user.name) && (mechanism === EXTERNAL || checkPassword(core, user.name, secret.toString('utf8')));
  if (!ok) throw new AmqpConnectionError(ReplyCode.NotAllowed, 'New secret was refused by one of the backends', 10, 70);
}

/**
 * connection.open: RabbitMQ's order: the vhost's max-connections, then access to the vhost
 * (530 for an unknown vhost or no permission). The connection is counted from here on.
 */
export function openSession(core: Core, user: AuthenticatedUser, vhostName: string, connection: ClientConnection & object): Session {
  const max = core.access.limits(vhostName).maxConnections;
  if (max !== undefined && max >= 0 && core.vhosts.has(vhostName) && core.connectionCount(vhostName) >= max) {
    throw new AmqpConnectionError(
      ReplyCode.NotAllowed,
      `access to vhost '${vhostName}' refused for user '${user.name}': connection limit (${max}) is reached`,
      10,
      40,
    );
  }
  const vhost = checkVhostAccess(core, user, vhostName);
  core.connections.set(connection.id, connection);
  return new Session(core, user, vhost, connection);
}

/** The connection is gone: its exclusive queues go with it, and it no longer counts. */
export function closeSession(s: Session, connection: ClientConnection): void {
  s.core.connections.delete(connection.id);
  for (const q of s.exclusiveQueues) s.vhost.deleteQueue(q);
  s.exclusiveQueues.clear();
}
