import type { Channel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { connect, openChannel, uniqueName, withChannel } from './helpers.js';
import { expectChannelError, expectConnectionError } from './helpers-a.js';

/** Bodies currently in `queue`, in order, fetched with basic.get (no-ack). */
async function drainBodies(ch: Channel, queue: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const msg = await ch.get(queue, { noAck: true });
    if (msg === false) return bodies;
    bodies.push(msg.content.toString());
  }
}

/** Deletes exchanges on a fresh connection (the test's own may have been closed by an error). */
async function deleteExchanges(...names: string[]): Promise<void> {
  await withChannel(async (ch) => {
    for (const name of names) await ch.deleteExchange(name);
  });
}

const inequivalent = (arg: string, exchange: string, received: string, current: string): string =>
  `PRECONDITION_FAILED - inequivalent arg '${arg}' for exchange '${exchange}' in vhost '/': received '${received}' but current is '${current}'`;

describe('exchange.declare', () => {
  it.each(['direct', 'fanout', 'topic', 'headers'])('declares a %s exchange; redeclaring it identically is ok', async (type) => {
    const name = uniqueName(`x-${type}`);
    await withChannel(async (ch) => {
      expect(await ch.assertExchange(name, type, { durable: false })).toEqual({ exchange: name });
      expect(await ch.assertExchange(name, type, { durable: false })).toEqual({ exchange: name });
      await ch.checkExchange(name);
      await ch.deleteExchange(name);
    });
  });

  it('passive on a missing exchange → channel error 404 NOT_FOUND', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const name = uniqueName('x-missing');
      const err = await expectChannelError(conn, ch, () => ch.checkExchange(name), 404, `NOT_FOUND - no exchange '${name}' in vhost '/'`);
      expect([err.classId, err.methodId]).toEqual([40, 10]);
    } finally {
      await conn.close();
    }
  });

  it('passive on an existing exchange ignores type and flags', async () => {
    const name = uniqueName('x');
    await withChannel(async (ch) => {
      await ch.assertExchange(name, 'fanout', { durable: false, autoDelete: false });
      // amqplib's checkExchange sends passive=true with an empty type and default flags
      await ch.checkExchange(name);
      await ch.deleteExchange(name);
    });
  });

  it.each([
    ['type', { type: 'fanout', durable: false }, 'fanout', 'direct'],
    ['durable', { type: 'direct', durable: true }, 'true', 'false'],
    ['auto_delete', { type: 'direct', durable: false, autoDelete: true }, 'true', 'false'],
    ['internal', { type: 'direct', durable: false, internal: true }, 'true', 'false'],
  ] as const)('redeclare with a different %s → channel error 406 PRECONDITION_FAILED', async (arg, redeclare, received, current) => {
    const name = uniqueName('x');
    const conn = await connect();
    try {
      const setup = await openChannel(conn);
      await setup.assertExchange(name, 'direct', { durable: false });
      const ch = await openChannel(conn);
      const { type, ...options } = redeclare;
      const err = await expectChannelError(conn, ch, () => ch.assertExchange(name, type, options), 406, inequivalent(arg, name, received, current));
      expect([err.classId, err.methodId]).toEqual([40, 10]);
      // the original exchange is untouched
      await setup.assertExchange(name, 'direct', { durable: false });
    } finally {
      await conn.close();
      await deleteExchanges(name);
    }
  });

  it('redeclare with different arguments → 406 PRECONDITION_FAILED', async () => {
    const name = uniqueName('x');
    const conn = await connect();
    try {
      const setup = await openChannel(conn);
      await setup.assertExchange(name, 'direct', { durable: false });
      const ch = await openChannel(conn);
      await expectChannelError(
        conn,
        ch,
        () => ch.assertExchange(name, 'direct', { durable: false, arguments: { 'alternate-exchange': 'foo' } }),
        406,
        `PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '${name}' in vhost '/': received the value 'foo' of type 'longstr' but current is none`,
      );
    } finally {
      await conn.close();
      await deleteExchanges(name);
    }
  });

  it('a name starting with "amq." → channel error 403 ACCESS_REFUSED', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const name = `amq.${uniqueName('x')}`;
      await expectChannelError(conn, ch, () => ch.assertExchange(name, 'direct'), 403, `ACCESS_REFUSED - exchange name '${name}' contains reserved prefix 'amq.*'`);
    } finally {
      await conn.close();
    }
  });

  it('declaring the default exchange "" (even passively) → channel error 403 ACCESS_REFUSED', async () => {
    const conn = await connect();
    try {
      const ch1 = await openChannel(conn);
      await expectChannelError(conn, ch1, () => ch1.assertExchange('', 'direct'), 403, 'ACCESS_REFUSED - operation not permitted on the default exchange');
      const ch2 = await openChannel(conn);
      // RabbitMQ: passive declare of "" is refused too, not answered with declare-ok
      await expectChannelError(conn, ch2, () => ch2.checkExchange(''), 403, 'ACCESS_REFUSED - operation not permitted on the default exchange');
    } finally {
      await conn.close();
    }
  });

  it('an unknown exchange type → connection error 503 COMMAND_INVALID', async () => {
    const conn = await connect();
    const ch = await openChannel(conn);
    await expectConnectionError(conn, () => ch.assertExchange(uniqueName('x'), 'x-nope'), 503, "COMMAND_INVALID - unknown exchange type 'x-nope'");
  });

  it('an unknown type is a 503 connection error even when the exchange already exists', async () => {
    const conn = await connect();
    const ch = await openChannel(conn);
    // RabbitMQ validates the type before looking the exchange up
    await expectConnectionError(conn, () => ch.assertExchange('amq.direct', 'x-nope', { durable: true }), 503, "COMMAND_INVALID - unknown exchange type 'x-nope'");
  });

  it.each([
    ['amq.direct', 'direct'],
    ['amq.fanout', 'fanout'],
    ['amq.topic', 'topic'],
    ['amq.headers', 'headers'],
    ['amq.match', 'headers'],
  ])('predeclared %s exists, is durable and of type %s', async (name, type) => {
    await withChannel(async (ch) => {
      await ch.checkExchange(name);
      // an identical redeclare of a predeclared exchange is allowed (any mismatch would be a 406)
      expect(await ch.assertExchange(name, type, { durable: true })).toEqual({ exchange: name });
    });
  });

  it('redeclaring a predeclared exchange with another type → 406', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await expectChannelError(conn, ch, () => ch.assertExchange('amq.direct', 'fanout', { durable: true }), 406, inequivalent('type', 'amq.direct', 'fanout', 'direct'));
    } finally {
      await conn.close();
    }
  });
});

describe('exchange.delete', () => {
  it('deletes an exchange: a passive declare afterwards → 404', async () => {
    const name = uniqueName('x');
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await ch.assertExchange(name, 'direct', { durable: false });
      expect(await ch.deleteExchange(name)).toEqual({});
      await expectChannelError(conn, ch, () => ch.checkExchange(name), 404, `NOT_FOUND - no exchange '${name}' in vhost '/'`);
    } finally {
      await conn.close();
    }
  });

  it('deleting a missing exchange is ok (RabbitMQ 3.10: delete-ok, no error)', async () => {
    await withChannel(async (ch) => {
      expect(await ch.deleteExchange(uniqueName('x-missing'))).toEqual({});
      await ch.checkExchange('amq.direct');
    });
  });

  it('ifUnused with a queue bound → channel error 406 PRECONDITION_FAILED; without bindings it deletes', async () => {
    const name = uniqueName('x');
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await ch.assertExchange(name, 'direct', { durable: false });
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, name, 'k');
      const err = await expectChannelError(conn, ch, () => ch.deleteExchange(name, { ifUnused: true }), 406, `PRECONDITION_FAILED - exchange '${name}' in vhost '/' in use`);
      expect([err.classId, err.methodId]).toEqual([40, 20]);
      const ch2 = await openChannel(conn);
      await ch2.checkExchange(name);
      await ch2.unbindQueue(queue, name, 'k');
      expect(await ch2.deleteExchange(name, { ifUnused: true })).toEqual({});
    } finally {
      await conn.close();
      await deleteExchanges(name);
    }
  });

  it('ifUnused counts exchange-to-exchange bindings where the exchange is the source, not the destination', async () => {
    const src = uniqueName('x-src');
    const dst = uniqueName('x-dst');
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await ch.assertExchange(src, 'direct', { durable: false });
      await ch.assertExchange(dst, 'direct', { durable: false });
      await ch.bindExchange(dst, src, 'k');
      await expectChannelError(conn, ch, () => ch.deleteExchange(src, { ifUnused: true }), 406, `PRECONDITION_FAILED - exchange '${src}' in vhost '/' in use`);
      const ch2 = await openChannel(conn);
      // RabbitMQ: being only a destination does not make an exchange "used"
      expect(await ch2.deleteExchange(dst, { ifUnused: true })).toEqual({});
    } finally {
      await conn.close();
      await deleteExchanges(src, dst);
    }
  });

  it('the default exchange "" cannot be deleted → 403 ACCESS_REFUSED', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const err = await expectChannelError(conn, ch, () => ch.deleteExchange(''), 403, 'ACCESS_REFUSED - operation not permitted on the default exchange');
      expect([err.classId, err.methodId]).toEqual([40, 20]);
    } finally {
      await conn.close();
    }
  });

  it('a predeclared amq.* exchange cannot be deleted → 403 ACCESS_REFUSED', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await expectChannelError(conn, ch, () => ch.deleteExchange('amq.direct'), 403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed");
      const ch2 = await openChannel(conn);
      await ch2.checkExchange('amq.direct');
    } finally {
      await conn.close();
    }
  });

  it('deleting an exchange removes its bindings', async () => {
    const name = uniqueName('x');
    await withChannel(async (ch) => {
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.assertExchange(name, 'direct', { durable: false });
      await ch.bindQueue(queue, name, 'k');
      await ch.deleteExchange(name);
      await ch.assertExchange(name, 'direct', { durable: false });
      ch.publish(name, 'k', Buffer.from('after re-declare'));
      expect(await drainBodies(ch, queue)).toEqual([]);
      await ch.deleteExchange(name);
    });
  });
});

describe('queue.bind / queue.unbind on the default exchange', () => {
  it('binding a queue to "" → channel error 403 ACCESS_REFUSED', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const { queue } = await ch.assertQueue('', { exclusive: true });
      const err = await expectChannelError(conn, ch, () => ch.bindQueue(queue, '', 'k'), 403, 'ACCESS_REFUSED - operation not permitted on the default exchange');
      expect([err.classId, err.methodId]).toEqual([50, 20]);
    } finally {
      await conn.close();
    }
  });

  it('unbinding a queue from "" (even its implicit binding) → channel error 403 ACCESS_REFUSED', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const { queue } = await ch.assertQueue('', { exclusive: true });
      const err = await expectChannelError(conn, ch, () => ch.unbindQueue(queue, '', queue), 403, 'ACCESS_REFUSED - operation not permitted on the default exchange');
      expect([err.classId, err.methodId]).toEqual([50, 50]);
    } finally {
      await conn.close();
    }
  });
});

describe('exchange.bind / exchange.unbind', () => {
  it('messages flow from the source to the destination exchange by the binding key, and stop after unbind', async () => {
    const src = uniqueName('x-src');
    const dst = uniqueName('x-dst');
    await withChannel(async (ch) => {
      await ch.assertExchange(src, 'direct', { durable: false });
      await ch.assertExchange(dst, 'fanout', { durable: false });
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, dst, '');
      expect(await ch.bindExchange(dst, src, 'k')).toEqual({});
      ch.publish(src, 'k', Buffer.from('routed'));
      ch.publish(src, 'other', Buffer.from('not routed'));
      expect(await drainBodies(ch, queue)).toEqual(['routed']);
      expect(await ch.unbindExchange(dst, src, 'k')).toEqual({});
      ch.publish(src, 'k', Buffer.from('after unbind'));
      expect(await drainBodies(ch, queue)).toEqual([]);
      await ch.deleteExchange(src);
      await ch.deleteExchange(dst);
    });
  });

  it('binding twice is idempotent (one copy per message)', async () => {
    const src = uniqueName('x-src');
    const dst = uniqueName('x-dst');
    await withChannel(async (ch) => {
      await ch.assertExchange(src, 'topic', { durable: false });
      await ch.assertExchange(dst, 'fanout', { durable: false });
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, dst, '');
      await ch.bindExchange(dst, src, 'a.*');
      await ch.bindExchange(dst, src, 'a.*');
      ch.publish(src, 'a.b', Buffer.from('once'));
      expect(await drainBodies(ch, queue)).toEqual(['once']);
      await ch.deleteExchange(src);
      await ch.deleteExchange(dst);
    });
  });

  it('a cycle A→B→A does not loop or duplicate: a queue bound to both gets each message once', async () => {
    const a = uniqueName('x-a');
    const b = uniqueName('x-b');
    await withChannel(async (ch) => {
      await ch.assertExchange(a, 'fanout', { durable: false });
      await ch.assertExchange(b, 'fanout', { durable: false });
      await ch.bindExchange(b, a, '');
      await ch.bindExchange(a, b, '');
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, a, '');
      await ch.bindQueue(queue, b, '');
      ch.publish(a, '', Buffer.from('from a'));
      ch.publish(b, '', Buffer.from('from b'));
      expect(await drainBodies(ch, queue)).toEqual(['from a', 'from b']);
      await ch.deleteExchange(a);
      await ch.deleteExchange(b);
    });
  });

  it('a diamond (S→A, S→B, A→Q, B→Q) delivers once', async () => {
    const [s, a, b] = [uniqueName('x-s'), uniqueName('x-a'), uniqueName('x-b')];
    await withChannel(async (ch) => {
      for (const x of [s, a, b]) await ch.assertExchange(x, 'fanout', { durable: false });
      await ch.bindExchange(a, s, '');
      await ch.bindExchange(b, s, '');
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, a, '');
      await ch.bindQueue(queue, b, '');
      ch.publish(s, '', Buffer.from('once'));
      expect(await drainBodies(ch, queue)).toEqual(['once']);
      for (const x of [s, a, b]) await ch.deleteExchange(x);
    });
  });

  it('deleting the destination removes the exchange binding from the source', async () => {
    const src = uniqueName('x-src');
    const dst = uniqueName('x-dst');
    await withChannel(async (ch) => {
      await ch.assertExchange(src, 'fanout', { durable: false });
      await ch.assertExchange(dst, 'fanout', { durable: false });
      await ch.bindExchange(dst, src, '');
      await ch.deleteExchange(dst);
      // src has no bindings left, so ifUnused succeeds
      expect(await ch.deleteExchange(src, { ifUnused: true })).toEqual({});
    });
  });

  it('bind with a missing destination → channel error 404 NOT_FOUND', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const missing = uniqueName('x-missing');
      const err = await expectChannelError(conn, ch, () => ch.bindExchange(missing, 'amq.direct', 'k'), 404, `NOT_FOUND - no exchange '${missing}' in vhost '/'`);
      expect([err.classId, err.methodId]).toEqual([40, 30]);
    } finally {
      await conn.close();
    }
  });

  it('bind with a missing source → channel error 404 NOT_FOUND', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const missing = uniqueName('x-missing');
      await expectChannelError(conn, ch, () => ch.bindExchange('amq.direct', missing, 'k'), 404, `NOT_FOUND - no exchange '${missing}' in vhost '/'`);
    } finally {
      await conn.close();
    }
  });

  it.each([
    ['destination', '', 'amq.direct'],
    ['source', 'amq.direct', ''],
  ])('the default exchange as %s → channel error 403 ACCESS_REFUSED', async (_role, destination, source) => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await expectChannelError(conn, ch, () => ch.bindExchange(destination, source, 'k'), 403, 'ACCESS_REFUSED - operation not permitted on the default exchange');
    } finally {
      await conn.close();
    }
  });

  it('unbinding a binding that does not exist is ok, even for missing exchanges (RabbitMQ 3.10)', async () => {
    await withChannel(async (ch) => {
      expect(await ch.unbindExchange('amq.fanout', 'amq.direct', uniqueName('nothere'))).toEqual({});
      expect(await ch.unbindExchange(uniqueName('x-missing'), 'amq.direct', 'k')).toEqual({});
      await ch.checkExchange('amq.direct');
    });
  });
});

describe('exchange.declare internal', () => {
  it('publishing to an internal exchange → channel error 403 ACCESS_REFUSED; it still routes what reaches it by exchange binding', async () => {
    const internal = uniqueName('x-internal');
    const front = uniqueName('x-front');
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await ch.assertExchange(internal, 'fanout', { durable: false, internal: true });
      await ch.assertExchange(front, 'fanout', { durable: false });
      await ch.bindExchange(internal, front, '');
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, internal, '');
      ch.publish(front, '', Buffer.from('via binding'));
      expect(await drainBodies(ch, queue)).toEqual(['via binding']);
      const err = await expectChannelError(
        conn,
        ch,
        () => {
          ch.publish(internal, '', Buffer.from('direct'));
          // basic.publish has no reply: a synchronous method after it is the barrier
          return ch.checkExchange('amq.direct');
        },
        403,
        `ACCESS_REFUSED - cannot publish to internal exchange '${internal}' in vhost '/'`,
      );
      expect([err.classId, err.methodId]).toEqual([60, 40]);
    } finally {
      await conn.close();
      await deleteExchanges(internal, front);
    }
  });
});
