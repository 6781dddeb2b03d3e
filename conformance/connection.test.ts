import amqp from 'amqplib';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  amqpUrl,
  connect,
  consumeN,
  expectConnectionClose,
  expectConnectionUsable,
  openChannel,
  RawClient,
  replyText,
  tuned,
  UnexpectedMethodError,
  uniqueName,
  withChannel,
} from './support/index.js';

/** amqplib reports a close during the handshake as "Handshake terminated by server: 403 (ACCESS-REFUSED) with message …". */
async function handshakeRefusal(url: string): Promise<{ code: number; text: string }> {
  const err = await amqp.connect(url).then(
    async (conn) => {
      await conn.close();
      return null;
    },
    (e: unknown) => e as Error,
  );
  expect(err, 'connect must reject').not.toBeNull();
  const m = /^Handshake terminated by server: (\d+) /.exec(err!.message);
  expect(m, err!.message).not.toBeNull();
  return { code: Number(m![1]), text: replyText(err!) };
}

function withUrl(mutate: (u: URL) => void): string {
  const u = new URL(amqpUrl());
  mutate(u);
  return u.toString();
}

describe('connection.start / start-ok / tune / open (handshake)', () => {
  it('completes the handshake and opens a channel', async () => {
    const conn = await connect();
    try {
      await expectConnectionUsable(conn);
    } finally {
      await conn.close();
    }
  });

  it('connection.start server-properties name the product and advertise RabbitMQ capabilities', async () => {
    const conn = await connect();
    try {
      const props = tuned(conn).serverProperties;
      for (const key of ['product', 'version', 'platform']) {
        expect(typeof props[key], key).toBe('string');
        expect((props[key] as string).length, key).toBeGreaterThan(0);
      }
      // RabbitMQ 3.10 advertises exactly these as true; clients (pika, amqplib, Java) feature-detect on them
      expect(props.capabilities).toMatchObject({
        'connection.blocked': true,
        publisher_confirms: true,
        exchange_exchange_bindings: true,
        'basic.nack': true,
        consumer_cancel_notify: true,
        consumer_priorities: true,
        authentication_failure_close: true,
        per_consumer_qos: true,
        direct_reply_to: true,
      });
    } finally {
      await conn.close();
    }
  });

  it('connection.tune: the broker proposes frame_max 131072, channel_max 2047, heartbeat 60', async () => {
    // amqplib accepts the server's proposals when the client expresses no preference
    // (channelMax 0 = no limit of its own, heartbeat unset = take the server's)
    const conn = await connect();
    try {
      const t = tuned(conn);
      expect(t.frameMax).toBe(131072);
      expect(t.channelMax).toBe(2047);
      expect(t.heartbeat).toBe(60);
    } finally {
      await conn.close();
    }
  });

  it('connection.tune-ok: a smaller client frame_max is honoured and large messages are split to fit it', async () => {
    const url = `${amqpUrl()}${amqpUrl().includes('?') ? '&' : '?'}frameMax=8192`;
    const conn = await connect(url);
    try {
      expect(tuned(conn).frameMax).toBe(8192);
      const ch = await openChannel(conn);
      const { queue } = await ch.assertQueue('', { exclusive: true });
      // 100 KB body: the broker must deliver it in body frames no larger than 8192 (amqplib
      // itself rejects oversized inbound frames, so a successful delivery proves it)
      const body = randomBytes(100 * 1024);
      ch.sendToQueue(queue, body);
      const [msg] = await consumeN(ch, queue, 1);
      expect(Buffer.compare(msg!.content, body)).toBe(0);
    } finally {
      await conn.close();
    }
  });

  it('connection.tune-ok: heartbeat=0 from the client disables heartbeats', async () => {
    const conn = await connect(`${amqpUrl()}${amqpUrl().includes('?') ? '&' : '?'}heartbeat=0`);
    try {
      expect(tuned(conn).heartbeat).toBe(0);
      await expectConnectionUsable(conn);
    } finally {
      await conn.close();
    }
  });

  it('connection.start-ok with a bad password → 403 ACCESS_REFUSED, connect rejects', async () => {
    const url = withUrl((u) => {
      u.password = `wrong-${randomBytes(4).toString('hex')}`;
    });
    // authentication_failure_close: RabbitMQ sends connection.close 403 rather than just dropping the socket
    const { code, text } = await handshakeRefusal(url);
    expect(code).toBe(403);
    expect(text).toBe('ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.');
  });

  it('connection.start-ok with an unknown user → 403 ACCESS_REFUSED (same text: no user enumeration)', async () => {
    const url = withUrl((u) => {
      u.username = uniqueName('nobody');
    });
    const { code, text } = await handshakeRefusal(url);
    expect(code).toBe(403);
    expect(text).toBe('ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.');
  });

  it('connection.open to an unknown vhost → connection.close 530 NOT_ALLOWED, connect rejects', async () => {
    const vhost = uniqueName('no-such-vhost');
    const url = withUrl((u) => {
      u.pathname = `/${vhost}`;
    });
    // amqplib only says "Expected ConnectionOpenOk; got <ConnectionClose channel:0>", so read the close raw too
    await expect(amqp.connect(url)).rejects.toThrow(/ConnectionClose/);
    const err = await RawClient.open(url).then(
      ({ client }) => {
        client.destroy();
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UnexpectedMethodError);
    expect((err as UnexpectedMethodError).close).toEqual({ code: 530, text: `NOT_ALLOWED - vhost ${vhost} not found`, method: [10, 40] });
  });
});

describe('connection.close', () => {
  it('a client close completes cleanly (close-ok) and emits close without error', async () => {
    const conn = await connect();
    let errored = false;
    conn.on('error', () => (errored = true));
    const closed = once(conn, 'close');
    await conn.close();
    await closed;
    expect(errored).toBe(false);
  });

  it('closing the connection closes its channels', async () => {
    const conn = await connect();
    const ch = await openChannel(conn);
    const chClosed = once(ch, 'close');
    await conn.close();
    await chClosed;
  });

  it('a connection error closes only that connection; another connection is unaffected', async () => {
    const victim = await connect();
    const ch = await openChannel(victim);
    // exchange.declare with an unknown type is a connection-level 503 in RabbitMQ
    await expectConnectionClose(victim, { code: 503, text: "COMMAND_INVALID - unknown exchange type 'x-nope'" }, () =>
      ch.assertExchange(uniqueName('x'), 'x-nope'),
    );
  });

  it('many connections open and close concurrently', async () => {
    const conns = await Promise.all(Array.from({ length: 10 }, () => connect()));
    await Promise.all(conns.map((c) => expectConnectionUsable(c)));
    await Promise.all(conns.map((c) => c.close()));
  });

  it('a queue declared on one connection is visible from another', async () => {
    const name = uniqueName('q');
    await withChannel(async (ch) => {
      await ch.assertQueue(name, { autoDelete: false });
    });
    await withChannel(async (ch) => {
      const ok = await ch.checkQueue(name);
      expect(ok.queue).toBe(name);
      await ch.deleteQueue(name);
    });
  });
});
