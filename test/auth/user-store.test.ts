import { describe, expect, it } from 'vitest';
import { isLoopback, UserStore } from '../../src/auth/user-store.js';

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

describe('UserStore.login', () => {
  const users = new UserStore([
    { username: 'guest', password: 'guest', loopbackOnly: true },
    { username: 'app', password: 'pw', loopbackOnly: false },
  ]);

  it('guest from loopback is let in', () => {
    expect(users.login('guest', 'guest', '127.0.0.1')).toEqual({ ok: true, username: 'guest' });
  });

  it('guest from an unknown peer address is refused', () => {
    expect(users.login('guest', 'guest', undefined)).toEqual({
      ok: false,
      username: 'guest',
      reason: "user 'guest' can only connect via localhost",
    });
  });

  it('guest from elsewhere is refused', () => {
    expect(users.login('guest', 'guest', '10.1.2.3').ok).toBe(false);
  });

  it('a user that is not loopback-only may connect from an unknown address', () => {
    expect(users.login('app', 'pw', undefined)).toEqual({ ok: true, username: 'app' });
  });

  it('a wrong password is refused whatever the address', () => {
    expect(users.login('app', 'nope', '127.0.0.1').ok).toBe(false);
  });
});
