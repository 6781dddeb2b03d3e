import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * RabbitMQ's password hashing (rabbit_password): a stored hash is base64 of a 4-byte random
 * salt followed by H(salt ‖ utf8(password)). The algorithm is named as in RabbitMQ's
 * definitions (`hashing_algorithm`), so users exported from RabbitMQ log in with their
 * old passwords. New hashes use sha256, RabbitMQ's default.
 */
export const HASHING_ALGORITHMS = {
  rabbit_password_hashing_sha256: 'sha256',
  rabbit_password_hashing_sha512: 'sha512',
  rabbit_password_hashing_md5: 'md5',
} as const;

export type HashingAlgorithm = keyof typeof HASHING_ALGORITHMS;
export const DEFAULT_HASHING_ALGORITHM: HashingAlgorithm = 'rabbit_password_hashing_sha256';

const SALT_BYTES = 4;

export function isHashingAlgorithm(name: string): name is HashingAlgorithm {
  return Object.prototype.hasOwnProperty.call(HASHING_ALGORITHMS, name);
}

function digest(algorithm: HashingAlgorithm, salt: Buffer, password: string): Buffer {
  return createHash(HASHING_ALGORITHMS[algorithm]).update(salt).update(password, 'utf8').digest();
}

/** A new salted hash of `password`, base64 as RabbitMQ stores and exports it. */
export function hashPassword(password: string, algorithm: HashingAlgorithm = DEFAULT_HASHING_ALGORITHM, salt = randomBytes(SALT_BYTES)): string {
  return Buffer.concat([salt, digest(algorithm, salt, password)]).toString('base64');
}

/**
 * Checks a password against a stored hash. An empty hash matches nothing (RabbitMQ: a user
 * without a password cannot log in with one, only through e.g. EXTERNAL).
 */
export function verifyPassword(password: string, passwordHash: string, algorithm: HashingAlgorithm): boolean {
  const stored = Buffer.from(passwordHash, 'base64');
  if (stored.length <= SALT_BYTES) return false;
  const salt = stored.subarray(0, SALT_BYTES);
  const expected = stored.subarray(SALT_BYTES);
  const actual = digest(algorithm, salt, password);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A hash as RabbitMQ's definitions carry it: base64 of at least a salt and a digest of the algorithm's size. */
export function isValidPasswordHash(passwordHash: string, algorithm: HashingAlgorithm): boolean {
  if (passwordHash === '') return true; // a passwordless user
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(passwordHash)) return false;
  const size = createHash(HASHING_ALGORITHMS[algorithm]).digest().length;
  return Buffer.from(passwordHash, 'base64').length === SALT_BYTES + size;
}
