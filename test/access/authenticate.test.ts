import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/password-hash.js';
import { authenticate, saslMechanisms, updateSecret } from '../../src/operations/authenticate.js';
import { Core } from '../../src/operations/core.js';
import { encodeFieldTable, fieldTableFromJs } from '../../src/protocol/field-table.js';
import { QueueStorage } from '../../src/queue/queue-storage.js';
import { MemoryBudget } from '../../src/queue/memory-budget.js';
import { MemoryStore } from '../../src/store/memory-store.js';

function core(): Core {
  const store = new MemoryStore();
  const c = new Core({ store, storage: new QueueStorage(store, false, new MemoryBudget(Infinity)), logger: pino({ level: 'silent' }), loopbackUsers: ['guest'] });
  c.access.putUser({ name: 'guest', passwordHash: hashPassword('guest'), hashingAlgorithm: 'rabbit_password_hashing_sha256', tags: ['administrator'] });
  c.access.putUser({ name: 'app', passwordHash: hashPassword('pw', 'rabbit_password_hashing_md5'), hashingAlgorithm: 'rabbit_password_hashing_md5', tags: [] });
  c.access.putUser({ name: 'cert-only', passwordHash: '', hashingAlgorithm: 'rabbit_password_hashing_sha256', tags: [] });
  return c;
}

const plain = (user: string, pass: string): Buffer => Buffer.from(`\0${user}\0${pass}`);
const local = { address: '127.0.0.1', certificateLogin: null };
const remote = { address: '192.0.2.7', certificateLogin: null };

describe('authenticate (connection.start-ok)', () => {
  it('PLAIN and AMQPLAIN check the stored hash, whatever its algorithm', () => {
    const c = core();
    expect(authenticate(c, 'PLAIN', plain('app', 'pw'), remote)).toMatchObject({ ok: true, user: { name: 'app' } });
    expect(authenticate(c, 'PLAIN', plain('app', 'nope'), remote)).toMatchObject({ ok: false, reason: 'invalid credentials' });
    const amqplain = encodeFieldTable(fieldTableFromJs({ LOGIN: 'app', PASSWORD: 'pw' })).subarray(4);
    expect(authenticate(c, 'AMQPLAIN', amqplain, remote)).toMatchObject({ ok: true });
    expect(authenticate(c, 'PLAIN', Buffer.from('garbage'), remote)).toMatchObject({ ok: false, reason: 'malformed SASL response' });
    // a user without a password cannot log in with one, not even an empty one
    expect(authenticate(c, 'PLAIN', plain('cert-only', ''), local)).toMatchObject({ ok: false });
  });

  it('guest (loopback_users) may only log in from loopback', () => {
    const c = core();
    expect(authenticate(c, 'PLAIN', plain('guest', 'guest'), local)).toMatchObject({ ok: true });
    expect(authenticate(c, 'PLAIN', plain('guest', 'guest'), { address: '::ffff:127.0.0.1', certificateLogin: null })).toMatchObject({ ok: true });
    expect(authenticate(c, 'PLAIN', plain('guest', 'guest'), remote)).toMatchObject({ ok: false, reason: "user 'guest' can only connect via localhost" });
    // an unknown peer address (a socket reset before it was accepted) is not loopback
    expect(authenticate(c, 'PLAIN', plain('guest', 'guest'), { address: undefined, certificateLogin: null })).toMatchObject({ ok: false });
    expect(authenticate(c, 'PLAIN', plain('app', 'pw'), { address: undefined, certificateLogin: null })).toMatchObject({ ok: true });
  });

  it('EXTERNAL is offered and accepted only with a verified certificate naming an existing user', () => {
    const c = core();
    expect(saslMechanisms(remote)).toEqual(['PLAIN', 'AMQPLAIN']);
    const withCert = { address: '192.0.2.7', certificateLogin: 'cert-only' };
    expect(saslMechanisms(withCert)).toEqual(['PLAIN', 'AMQPLAIN', 'EXTERNAL']);
    expect(authenticate(c, 'EXTERNAL', Buffer.alloc(0), withCert)).toMatchObject({ ok: true, user: { name: 'cert-only' } });
    expect(authenticate(c, 'EXTERNAL', Buffer.alloc(0), { address: '192.0.2.7', certificateLogin: 'stranger' })).toMatchObject({ ok: false });
    expect(() => authenticate(c, 'EXTERNAL', Buffer.alloc(0), remote)).toThrow(/unknown authentication mechanism 'EXTERNAL'/);
    expect(() => authenticate(c, 'SCRAM-SHA-1', Buffer.alloc(0), remote)).toThrow(expect.objectContaining({ replyCode: 503 }));
  });

  it('update-secret: the current password (or a certificate login) is accepted; anything else is 530', () => {
    const c = core();
    const app = { name: 'app', tags: [] };
    expect(() => updateSecret(c, app, 'PLAIN', Buffer.from('pw'))).not.toThrow();
    expect(() => updateSecret(c, app, 'PLAIN', Buffer.from('old'))).toThrow(expect.objectContaining({ replyCode: 530, replyText: 'New secret was refused by one of the backends' }));
    expect(() => updateSecret(c, { name: 'cert-only', tags: [] }, 'EXTERNAL', Buffer.from('anything'))).not.toThrow();
    c.access.deleteUser('app');
    expect(() => updateSecret(c, app, 'PLAIN', Buffer.from('pw'))).toThrow(expect.objectContaining({ replyCode: 530 }));
  });
});
