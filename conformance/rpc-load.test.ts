import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openChannel, Scope } from './support/index.js';

// RPC under load: many concurrent calls from several callers to several competing servers,
// every reply matched to its request by correlation_id. Both reply styles RabbitMQ offers:
// a reply queue per caller, and direct reply-to (amq.rabbitmq.reply-to).

const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
const CALLS = 1000;
const CALLERS = 4;
const SERVERS = 3;

const scope = new Scope();
beforeAll(() => scope.open());
afterEach(() => scope.cleanup());
afterAll(() => scope.close());

/** Consumes the request queue (manual ack, prefetch 50) and answers `reply:<body>` with the request's correlationId. */
class Server {
  handled = 0;
  private constructor(private readonly ch: Channel) {}

  static async start(conn: ChannelModel, queue: string): Promise<Server> {
    const ch = await openChannel(conn);
    await ch.prefetch(50);
    const server = new Server(ch);
    await ch.consume(queue, (m) => server.onRequest(m), { noAck: false });
    return server;
  }

  private onRequest(m: ConsumeMessage | null): void {
    if (m === null) return;
    this.handled++;
    const { replyTo, correlationId } = m.properties as { replyTo: string; correlationId: string };
    this.ch.publish('', replyTo, Buffer.from(`reply:${m.content.toString()}`), { correlationId });
    this.ch.ack(m);
  }
}

/** Issues calls and resolves each with the reply carrying its correlationId. */
class Caller {
  private readonly pending = new Map<string, (reply: ConsumeMessage) => void>();
  private seq = 0;
  /** Replies whose correlationId matched no pending call (must stay empty). */
  readonly stray: ConsumeMessage[] = [];
  private constructor(
    private readonly ch: Channel,
    private readonly id: number,
    readonly replyTo: string,
  ) {}

  /** `replyQueue` null: an exclusive server-named queue; else consume that name (direct reply-to) no-ack. */
  static async start(conn: ChannelModel, id: number, replyQueue: string | null): Promise<Caller> {
    const ch = await openChannel(conn);
    const replyTo = replyQueue ?? (await ch.assertQueue('', { exclusive: true })).queue;
    const caller = new Caller(ch, id, replyTo);
    await ch.consume(replyTo, (m) => caller.onReply(m), { noAck: true });
    return caller;
  }

  private onReply(m: ConsumeMessage | null): void {
    if (m === null) return;
    const id = m.properties.correlationId as string | undefined;
    const resolve = id === undefined ? undefined : this.pending.get(id);
    if (resolve === undefined) {
      this.stray.push(m);
      return;
    }
    this.pending.delete(id!);
    resolve(m);
  }

  call(queue: string, body: string): Promise<ConsumeMessage> {
    const correlationId = `c${this.id}-${++this.seq}`;
    return new Promise((resolve) => {
      this.pending.set(correlationId, resolve);
      this.ch.sendToQueue(queue, Buffer.from(body), { replyTo: this.replyTo, correlationId });
    });
  }

  get outstanding(): number {
    return this.pending.size;
  }
}

async function runLoad(replyQueue: string | null): Promise<{ servers: Server[]; callers: Caller[] }> {
  const queue = await scope.queue('rpc-load');
  const servers: Server[] = [];
  for (let i = 0; i < SERVERS; i++) servers.push(await Server.start(await scope.connection(), queue));
  const callers: Caller[] = [];
  for (let i = 0; i < CALLERS; i++) callers.push(await Caller.start(await scope.connection(), i, replyQueue));

  const calls: Promise<void>[] = [];
  for (let n = 0; n < CALLS; n++) {
    const caller = callers[n % CALLERS]!;
    const body = `req-${n}`;
    calls.push(
      caller.call(queue, body).then((reply) => {
        // the reply carries this request's correlationId and answers this request's body
        expect(reply.content.toString()).toBe(`reply:${body}`);
      }),
    );
  }
  await Promise.all(calls);
  return { servers, callers };
}

describe('rpc load', () => {
  it(`${CALLS} concurrent calls from ${CALLERS} callers to ${SERVERS} servers over server-named reply queues`, async () => {
    const { servers, callers } = await runLoad(null);
    expect(callers.map((c) => c.stray.length)).toEqual([0, 0, 0, 0]);
    expect(callers.map((c) => c.outstanding)).toEqual([0, 0, 0, 0]);
    expect(servers.reduce((sum, s) => sum + s.handled, 0)).toBe(CALLS);
    // competing consumers share the work
    for (const s of servers) expect(s.handled).toBeGreaterThan(0);
  });

  it(`${CALLS} concurrent calls from ${CALLERS} callers to ${SERVERS} servers over direct reply-to`, async () => {
    const { servers, callers } = await runLoad(DIRECT_REPLY_TO);
    expect(callers.map((c) => c.stray.length)).toEqual([0, 0, 0, 0]);
    expect(callers.map((c) => c.outstanding)).toEqual([0, 0, 0, 0]);
    expect(servers.reduce((sum, s) => sum + s.handled, 0)).toBe(CALLS);
    for (const s of servers) expect(s.handled).toBeGreaterThan(0);
  });
});
