import { describe, expect, it } from 'vitest';
import { connect, drain, expectChannelClose, expectConnectionClose, openChannel, uniqueName, withChannel } from './support/index.js';

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
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no exchange '${name}' in vhost '/'`, method: [40, 10] }, () => ch.checkExchange(name));
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
      await expectChannelClose(ch, { code: 406, text: inequivalent(arg, name, received, current), method: [40, 10] }, () =>
        ch.assertExchange(name, type, options),
      );
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
      await expectChannelClose(
        ch,
        {
          code: 406,
          text: `PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '${name}' in vhost '/': received the value 'foo' of type 'longstr' but current is none`,
        },
        () => ch.assertExchange(name, 'direct', { durable: false, arguments: { 'alternate-exchange': 'foo' } }),
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
      await expectChannelClose(ch, { code: 403, text: `ACCESS_REFUSED - exchange name '${name}' contains reserved prefix 'amq.*'` }, () =>
        ch.assertExchange(name, 'direct'),
      );
    } finally {
      await conn.close();
    }
  });

  it('declaring the default exchange "" (even passively) → channel error 403 ACCESS_REFUSED', async () => {
    const conn = await connect();
    try {
      const ch1 = await openChannel(conn);
      await expectChannelClose(ch1, { code: 403, text: 'ACCESS_REFUSED - operation not permitted on the default exchange' }, () =>
        ch1.assertExchange('', 'direct'),
      );
      const ch2 = await openChannel(conn);
      // RabbitMQ: passive declare of "" is refused too, not answered with declare-ok
      await expectChannelClose(ch2, { code: 403, text: 'ACCESS_REFUSED - operation not permitted on the default exchange' }, () => ch2.checkExchange(''));
    } finally {
      await conn.close();
    }
  });

  it('an unknown exchange type → connection error 503 COMMAND_INVALID', async () => {
    const conn = await connect();
    const ch = await openChannel(conn);
    await expectConnectionClose(conn, { code: 503, text: "COMMAND_INVALID - unknown exchange type 'x-nope'" }, () =>
      ch.assertExchange(uniqueName('x'), 'x-nope'),
    );
  });

  it('an unknown type is a 503 connection error even when the exchange already exists', async () => {
    const conn = await connect();
    const ch = await openChannel(conn);
    // RabbitMQ validates the type before looking the exchange up
    await expectConnectionClose(conn, { code: 503, text: "COMMAND_INVALID - unknown exchange type 'x-nope'" }, () =>
      ch.assertExchange('amq.direct', 'x-nope', { durable: true }),
    );
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
      await expectChannelClose(ch, { code: 406, text: inequivalent('type', 'amq.direct', 'fanout', 'direct') }, () =>
        ch.assertExchange('amq.direct', 'fanout', { durable: true }),
      );
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
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no exchange '${name}' in vhost '/'` }, () => ch.checkExchange(name));
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
      await expectChannelClose(ch, { code: 406, text: `PRECONDITION_FAILED - exchange '${name}' in vhost '/' in use`, method: [40, 20] }, () =>
        ch.deleteExchange(name, { ifUnused: true }),
      );
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
      await expectChannelClose(ch, { code: 406, text: `PRECONDITION_FAILED - exchange '${src}' in vhost '/' in use` }, () =>
        ch.deleteExchange(src, { ifUnused: true }),
      );
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
      await expectChannelClose(ch, { code: 403, text: 'ACCESS_REFUSED - operation not permitted on the default exchange', method: [40, 20] }, () =>
        ch.deleteExchange(''),
      );
    } finally {
      await conn.close();
    }
  });

  it('a predeclared amq.* exchange cannot be deleted → 403 ACCESS_REFUSED', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      await expectChannelClose(ch, { code: 403, text: "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed" }, () =>
        ch.deleteExchange('amq.direct'),
      );
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
      expect(await drain(ch, queue)).toEqual([]);
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
      await expectChannelClose(ch, { code: 403, text: 'ACCESS_REFUSED - operation not permitted on the default exchange', method: [50, 20] }, () =>
        ch.bindQueue(queue, '', 'k'),
      );
    } finally {
      await conn.close();
    }
  });

  it('unbinding a queue from "" (even its implicit binding) → channel error 403 ACCESS_REFUSED', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await expectChannelClose(ch, { code: 403, text: 'ACCESS_REFUSED - operation not permitted on the default exchange', method: [50, 50] }, () =>
        ch.unbindQueue(queue, '', queue),
      );
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
      expect(await drain(ch, queue)).toEqual(['routed']);
      expect(await ch.unbindExchange(dst, src, 'k')).toEqual({});
      ch.publish(src, 'k', Buffer.from('after unbind'));
      expect(await drain(ch, queue)).toEqual([]);
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
      expect(await drain(ch, queue)).toEqual(['once']);
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
      expect(await drain(ch, queue)).toEqual(['from a', 'from b']);
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
      expect(await drain(ch, queue)).toEqual(['once']);
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
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no exchange '${missing}' in vhost '/'`, method: [40, 30] }, () =>
        ch.bindExchange(missing, 'amq.direct', 'k'),
      );
    } finally {
      await conn.close();
    }
  });

  it('bind with a missing source → channel error 404 NOT_FOUND', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const missing = uniqueName('x-missing');
      await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no exchange '${missing}' in vhost '/'` }, () => ch.bindExchange('amq.direct', missing, 'k'));
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
      await expectChannelClose(ch, { code: 403, text: 'ACCESS_REFUSED - operation not permitted on the default exchange' }, () =>
        ch.bindExchange(destination, source, 'k'),
      );
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
      expect(await drain(ch, queue)).toEqual(['via binding']);
      await expectChannelClose(
        ch,
        { code: 403, text: `ACCESS_REFUSED - cannot publish to internal exchange '${internal}' in vhost '/'`, method: [60, 40] },
        () => ch.publish(internal, '', Buffer.from('direct')),
      );
    } finally {
      await conn.close();
      await deleteExchanges(internal, front);
    }
  });
});
