import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, consumeInto, expectChannelClose, openChannel, uniqueName } from './support/index.js';

const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

const connections: ChannelModel[] = [];
/** Declares and deletes the request queues, whatever happens to the test's own connections. */
let admin: ChannelModel;
let adminCh: Channel;
const requestQueues: string[] = [];

beforeAll(async () => {
  admin = await connect();
  adminCh = await openChannel(admin);
});

afterEach(async () => {
  // closing the connections also removes their exclusive reply queues
  while (connections.length > 0)
    await connections
      .pop()!
      .close()
      .catch(() => {});
  while (requestQueues.length > 0) await adminCh.deleteQueue(requestQueues.pop()!);
});

afterAll(async () => {
  await admin.close().catch(() => {});
});

async function tracked(): Promise<ChannelModel> {
  const conn = await connect();
  connections.push(conn);
  return conn;
}

/** An RPC server: consumes `queue` (acking), replies `echo:<body>` via the default exchange with the same correlationId. */
class RpcServer {
  handled = 0;
  readonly seenReplyTo: string[] = [];
  private constructor(readonly ch: Channel) {}

  static async start(conn: ChannelModel, queue: string, prefetch = 10): Promise<RpcServer> {
    const ch = await openChannel(conn);
    await ch.prefetch(prefetch);
    const server = new RpcServer(ch);
    await ch.consume(queue, (msg) => server.onRequest(msg), { noAck: false });
    return server;
  }

  private onRequest(msg: ConsumeMessage | null): void {
    if (msg === null) return;
    this.handled++;
    const { replyTo, correlationId } = msg.properties as { replyTo: string; correlationId: string };
    this.seenReplyTo.push(replyTo);
    // spec: the reply goes to the default exchange, routed by the reply queue's name
    this.ch.publish('', replyTo, Buffer.from(`echo:${msg.content.toString()}`), { correlationId });
    this.ch.ack(msg);
  }
}

/** An RPC client: one reply queue, pending calls matched by correlationId. */
class RpcClient {
  private readonly pending = new Map<string, { resolve: (m: ConsumeMessage) => void; reject: (e: Error) => void }>();
  private next = 0;
  readonly unmatched: ConsumeMessage[] = [];
  private constructor(
    readonly ch: Channel,
    readonly replyTo: string,
  ) {}

  /** `replyQueue` null → an exclusive server-named queue; otherwise consume that name (e.g. direct reply-to) no-ack. */
  static async start(conn: ChannelModel, replyQueue: string | null = null): Promise<RpcClient> {
    const ch = await openChannel(conn);
    const replyTo = replyQueue ?? (await ch.assertQueue('', { exclusive: true })).queue;
    const client = new RpcClient(ch, replyTo);
    await ch.consume(replyTo, (msg) => client.onReply(msg), { noAck: true });
    return client;
  }

  private onReply(msg: ConsumeMessage | null): void {
    if (msg === null) return;
    const id = msg.properties.correlationId as string | undefined;
    const waiter = id === undefined ? undefined : this.pending.get(id);
    if (waiter === undefined) {
      this.unmatched.push(msg);
      return;
    }
    this.pending.delete(id!);
    waiter.resolve(msg);
  }

  call(queue: string, body: string): Promise<ConsumeMessage> {
    const correlationId = `${this.replyTo}#${++this.next}`;
    return new Promise((resolve, reject) => {
      this.pending.set(correlationId, { resolve, reject });
      this.ch.sendToQueue(queue, Buffer.from(body), { replyTo: this.replyTo, correlationId });
    });
  }
}

/** A named request queue, deleted after the test. */
async function requestQueue(): Promise<string> {
  const q = uniqueName('rpc');
  await adminCh.assertQueue(q, { durable: false });
  requestQueues.push(q);
  return q;
}

describe('rpc over a server-named reply queue', () => {
  it('replyTo + correlationId: the reply comes back matched', async () => {
    const serverConn = await tracked();
    const q = await requestQueue();
    const server = await RpcServer.start(serverConn, q);
    const client = await RpcClient.start(await tracked());
    expect(client.replyTo).toMatch(/^amq\.gen-/);

    const reply = await client.call(q, 'ping');
    expect(reply.content.toString()).toBe('echo:ping');
    expect(reply.properties.correlationId).toBe(`${client.replyTo}#1`);
    expect(reply.fields.routingKey).toBe(client.replyTo);
    expect(server.seenReplyTo).toEqual([client.replyTo]);
    expect(client.unmatched).toEqual([]);
  });

  it('200 concurrent calls from 2 clients to 2 servers are all answered and matched', async () => {
    const serverConn = await tracked();
    const q = await requestQueue();
    const servers = [await RpcServer.start(serverConn, q), await RpcServer.start(await tracked(), q)];
    const clients = [await RpcClient.start(await tracked()), await RpcClient.start(await tracked())];

    const calls: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) {
      for (const [c, client] of clients.entries()) {
        const body = `c${c}-${i}`;
        calls.push(
          client.call(q, body).then((reply) => {
            expect(reply.content.toString()).toBe(`echo:${body}`);
          }),
        );
      }
    }
    await Promise.all(calls);
    expect(clients.map((c) => c.unmatched.length)).toEqual([0, 0]);
    expect(servers[0]!.handled + servers[1]!.handled).toBe(200);
    // competing consumers on one queue share the work
    expect(servers[0]!.handled).toBeGreaterThan(0);
    expect(servers[1]!.handled).toBeGreaterThan(0);
  });
});

describe('rpc over direct reply-to (amq.rabbitmq.reply-to)', () => {
  it('the server sees a rewritten replyTo and its reply reaches the requesting channel', async () => {
    const serverConn = await tracked();
    const q = await requestQueue();
    const server = await RpcServer.start(serverConn, q);
    const client = await RpcClient.start(await tracked(), DIRECT_REPLY_TO);

    const reply = await client.call(q, 'direct');
    expect(reply.content.toString()).toBe('echo:direct');
    expect(reply.properties.correlationId).toBe(`${DIRECT_REPLY_TO}#1`);
    expect(server.seenReplyTo).toHaveLength(1);
    expect(server.seenReplyTo[0]).toMatch(/^amq\.rabbitmq\.reply-to\.[^.]/);
    // the reply arrives on the pseudo-queue's consumer, routed by the rewritten name
    expect(reply.fields.routingKey).toBe(server.seenReplyTo[0]);

    // many calls in flight over the same channel are matched too
    const bodies = Array.from({ length: 50 }, (_, i) => `d${i}`);
    const replies = await Promise.all(bodies.map((b) => client.call(q, b)));
    expect(replies.map((r) => r.content.toString())).toEqual(bodies.map((b) => `echo:${b}`));
    expect(client.unmatched).toEqual([]);
  });

  it('consuming amq.rabbitmq.reply-to without noAck → channel error 406 PRECONDITION_FAILED', async () => {
    const conn = await tracked();
    const ch = await openChannel(conn);
    // spec: basic.consume is class 60 method 20
    await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - reply consumer cannot acknowledge', method: [60, 20] }, () =>
      ch.consume(DIRECT_REPLY_TO, () => {}, { noAck: false }),
    );
  });

  it('publishing with replyTo amq.rabbitmq.reply-to before consuming it → channel error 406 PRECONDITION_FAILED', async () => {
    const conn = await tracked();
    const q = await requestQueue();
    const ch = await openChannel(conn);
    await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - fast reply consumer does not exist', method: [60, 40] }, () =>
      ch.sendToQueue(q, Buffer.from('x'), { replyTo: DIRECT_REPLY_TO }),
    );
    // nothing was enqueued
    const check = await openChannel(conn);
    expect((await check.checkQueue(q)).messageCount).toBe(0);
  });

  it('a reply to a requester that has gone away is dropped without error', async () => {
    const serverConn = await tracked();
    const q = await requestQueue();
    const serverCh = await openChannel(serverConn);
    const requests = await consumeInto(serverCh, q, { noAck: true });

    const clientConn = await connect();
    const client = await RpcClient.start(clientConn, DIRECT_REPLY_TO);
    void client.call(q, 'orphan');
    const request = (await requests.nth(1))!;
    await clientConn.close();

    serverCh.publish('', request.properties.replyTo as string, Buffer.from('too late'));
    // the server's channel is still fine: a synchronous method on it succeeds after the publish
    await serverCh.checkQueue(q);
  });
});
