import { describe, expect, it } from 'vitest';
import { isLoopback } from '../../src/operations/authenticate.js';

describe('isLoopback', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'])('%s is loopback', (a) => {
    expect(isLoopback(a)).toBe(true);
  });
  it.each(['10.0.0.1', '::ffff:10.0.0.1', '192.168.1.127', '::2', ''])('%j is not', (a) => {
    expect(isLoopback(a)).toBe(false);
  });
  it('an unknown peer address is not loopback', () => {
    expect(isLoopback(undefined)).toBe(false);
  });
});
