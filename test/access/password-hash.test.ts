import { describe, expect, it } from 'vitest';
import { hashPassword, isValidPasswordHash, verifyPassword } from '../../src/auth/password-hash.js';

describe('RabbitMQ password hashes', () => {
  it("verifies a hash exported by RabbitMQ 3.10 (guest's, rabbit_password_hashing_sha256)", () => {
    const exported = 'PETk1FVJV/ogppVcHQ7FD0TUoo3d923TfYPkam0fxaHgFCbP';
    expect(verifyPassword('guest', exported, 'rabbit_password_hashing_sha256')).toBe(true);
    expect(verifyPassword('guesT', exported, 'rabbit_password_hashing_sha256')).toBe(false);
    expect(isValidPasswordHash(exported, 'rabbit_password_hashing_sha256')).toBe(true);
  });

  it('is base64(salt ‖ H(salt ‖ password)) for sha256, sha512 and md5', () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    for (const [algorithm, size] of [
      ['rabbit_password_hashing_sha256', 32],
      ['rabbit_password_hashing_sha512', 64],
      ['rabbit_password_hashing_md5', 16],
    ] as const) {
      const h = hashPassword('s3cret ünïcode', algorithm, salt);
      const raw = Buffer.from(h, 'base64');
      expect(raw.length).toBe(4 + size);
      expect(raw.subarray(0, 4)).toEqual(salt);
      expect(verifyPassword('s3cret ünïcode', h, algorithm)).toBe(true);
      expect(verifyPassword('s3cret', h, algorithm)).toBe(false);
      expect(isValidPasswordHash(h, algorithm)).toBe(true);
    }
  });

  it('new hashes get a random salt; an empty hash matches no password', () => {
    expect(hashPassword('x')).not.toBe(hashPassword('x'));
    expect(verifyPassword('', '', 'rabbit_password_hashing_sha256')).toBe(false);
    expect(isValidPasswordHash('not base64!', 'rabbit_password_hashing_sha256')).toBe(false);
    expect(isValidPasswordHash(hashPassword('x', 'rabbit_password_hashing_md5'), 'rabbit_password_hashing_sha256')).toBe(false);
  });
});
