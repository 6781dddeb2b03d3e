import { decodeFieldTableBody, fieldValueToJs } from '../protocol/field-table.js';

/** Mechanisms with a user name and password in the response. */
export const PASSWORD_MECHANISMS = ['PLAIN', 'AMQPLAIN'] as const;
/** SASL EXTERNAL: the identity is the verified TLS client certificate (rabbitmq_auth_mechanism_ssl). */
export const EXTERNAL = 'EXTERNAL';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/**
 * Parses a connection.start-ok response. PLAIN: "authzid\0user\0pass" (RFC 4616);
 * AMQPLAIN: a field table body (no length prefix) with LOGIN and PASSWORD.
 * Returns null when the response is malformed.
 */
export function parseSaslResponse(mechanism: string, response: Buffer): Credentials | null {
  if (mechanism === 'PLAIN') {
    const parts = response.toString('utf8').split('\0');
    if (parts.length !== 3) return null;
    return { username: parts[1]!, password: parts[2]! };
  }
  if (mechanism === 'AMQPLAIN') {
    try {
      const table = decodeFieldTableBody(response);
      const login = table.get('LOGIN');
      const password = table.get('PASSWORD');
      if (login === undefined || password === undefined) return null;
      return { username: String(fieldValueToJs(login)), password: String(fieldValueToJs(password)) };
    } catch {
      return null;
    }
  }
  return null;
}
