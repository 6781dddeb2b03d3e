import type { Channel, ChannelModel, ConsumeMessage, GetMessage, Message, Options } from 'amqplib';
import { once } from 'node:events';
import { amqpUrl } from './helpers.js';

/** A basic.return as amqplib emits it ('return' on the channel); @types/amqplib lacks the reply fields. */
export interface ReturnedMessage extends Message {
  fields: Message['fields'] & { replyCode: number; replyText: string };
}

/** A server-initiated channel.close / connection.close as amqplib reports it. */
export interface ServerClose {
  code: number;
  /** amqplib's formatted message, e.g. `Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - …"`. */
  message: string;
  /** The reply-text the server sent, e.g. `NOT_FOUND - no exchange 'x' in vhost '/'`. */
  replyText: string;
  classId?: number;
  methodId?: number;
}

/** Resolves on the emitter's next 'close' (events.once would reject on the 'error' that precedes it). */
function nextClose(emitter: Channel | ChannelModel): Promise<void> {
  return new Promise((resolve) => emitter.once('close', () => resolve()));
}

type RawError = Error & { code?: number; classId?: number; methodId?: number };

function toServerClose(err: RawError): ServerClose {
  const m = /with message "([\s\S]*)"$/.exec(err.message);
  return {
    code: err.code ?? -1,
    message: err.message,
    replyText: m?.[1] ?? '',
    classId: err.classId,
    methodId: err.methodId,
  };
}

/**
 * Waits for the broker to close `ch` with an error (amqplib: 'error' then 'close' on the
 * channel). When `action` is given (the call that provokes the error), it must reject too.
 */
export async function expectChannelClose(ch: Channel, action?: Promise<unknown>): Promise<ServerClose> {
  const errored = once(ch, 'error') as Promise<[RawError]>;
  const closed = nextClose(ch);
  if (action) {
    await action.then(
      () => {
        throw new Error('expected the operation to fail with a channel error');
      },
      () => undefined,
    );
  }
  const [[err]] = await Promise.all([errored, closed]);
  return toServerClose(err);
}

/**
 * For errors provoked by asynchronous methods (publish, ack, nack, reject): call it right
 * after them. It sends a synchronous method as a barrier; the broker handles the faulty
 * method first, so the barrier must be rejected by the channel close. A broker that does not
 * close the channel answers the barrier, and the test fails at once instead of timing out.
 */
export function expectChannelCloseAfter(ch: Channel): Promise<ServerClose> {
  return expectChannelClose(ch, ch.checkExchange('amq.direct'));
}

/** Waits for the broker to close the whole connection (amqplib: 'error' then 'close' on the model). */
export async function expectConnectionClose(conn: ChannelModel): Promise<ServerClose> {
  const errored = once(conn, 'error') as Promise<[RawError]>;
  const closed = nextClose(conn);
  const [[err]] = await Promise.all([errored, closed]);
  return toServerClose(err);
}

/** The user name the suite authenticates as (userId must equal it, RabbitMQ checks). */
export function connectionUser(): string {
  const user = new URL(amqpUrl()).username;
  return user === '' ? 'guest' : decodeURIComponent(user);
}

/** Drains a queue with basic.get (no-ack) and returns the bodies in order. */
export async function drain(ch: Channel, queue: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const msg = await ch.get(queue, { noAck: true });
    if (msg === false) return bodies;
    bodies.push(msg.content.toString());
  }
}

/**
 * Round-trip barrier for "nothing else arrives": two sequential passive queue.declare calls
 * on the consuming channel. Whatever the broker had already decided to deliver on this
 * channel is on the wire before the second declare-ok (RabbitMQ: the queue's delivery
 * is queued at the channel before the stat reply; the second round trip flushes it).
 * Returns the queue's ready message count as seen by the second call.
 */
export async function settle(ch: Channel, queue: string): Promise<number> {
  await ch.checkQueue(queue);
  const ok = await ch.checkQueue(queue);
  return ok.messageCount;
}

/**
 * A consumer whose deliveries can be awaited one by one. `null` marks a server-sent
 * basic.cancel (amqplib calls the consumer callback with null).
 */
export class Inbox {
  readonly received: (ConsumeMessage | null)[] = [];
  private readonly waiters: { n: number; resolve: () => void }[] = [];
  consumerTag = '';

  readonly onMessage = (msg: ConsumeMessage | null): void => {
    this.received.push(msg);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (this.received.length >= w.n) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  };

  /** Resolves once at least `n` deliveries (in total) have arrived. */
  async untilCount(n: number): Promise<(ConsumeMessage | null)[]> {
    if (this.received.length < n) {
      await new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
    }
    return this.received.slice(0, n);
  }

  /** Resolves with the delivery number `n` (1-based) once it has arrived. */
  async nth(n: number): Promise<ConsumeMessage | null> {
    await this.untilCount(n);
    return this.received[n - 1]!;
  }

  bodies(): string[] {
    return this.received.map((m) => (m === null ? '<cancel>' : m.content.toString()));
  }
}

export async function consumeInto(ch: Channel, queue: string, options?: Options.Consume): Promise<Inbox> {
  const inbox = new Inbox();
  const ok = await ch.consume(queue, inbox.onMessage, options);
  inbox.consumerTag = ok.consumerTag;
  return inbox;
}

/** basic.get that must succeed. */
export async function getOne(ch: Channel, queue: string, options?: Options.Get): Promise<GetMessage> {
  const msg = await ch.get(queue, options);
  if (msg === false) throw new Error(`expected a message on ${queue}, got get-empty`);
  return msg;
}

// Methods amqplib's promise API does not expose; ids are (classId << 16) | methodId.
// spec: tx.select 90/10, tx.commit 90/20, tx.rollback 90/30, confirm.select 85/10.
const TX_SELECT = (90 << 16) | 10;
const TX_SELECT_OK = (90 << 16) | 11;
const TX_COMMIT = (90 << 16) | 20;
const TX_COMMIT_OK = (90 << 16) | 21;
const TX_ROLLBACK = (90 << 16) | 30;
const TX_ROLLBACK_OK = (90 << 16) | 31;
const BASIC_QOS = (60 << 16) | 10;
const BASIC_QOS_OK = (60 << 16) | 11;
const BASIC_RECOVER = (60 << 16) | 110;
const BASIC_RECOVER_OK = (60 << 16) | 111;
const CONFIRM_SELECT = (85 << 16) | 10;
const CONFIRM_SELECT_OK = (85 << 16) | 11;

interface RawChannel {
  rpc(method: number, fields: object, expect: number): Promise<object>;
  sendMessage(fields: object, properties: object, content: Buffer): boolean;
}

const raw = (ch: Channel): RawChannel => ch as unknown as RawChannel;

export const txSelect = (ch: Channel): Promise<object> => raw(ch).rpc(TX_SELECT, {}, TX_SELECT_OK);
export const txCommit = (ch: Channel): Promise<object> => raw(ch).rpc(TX_COMMIT, {}, TX_COMMIT_OK);
export const txRollback = (ch: Channel): Promise<object> => raw(ch).rpc(TX_ROLLBACK, {}, TX_ROLLBACK_OK);
export const confirmSelect = (ch: Channel): Promise<object> => raw(ch).rpc(CONFIRM_SELECT, { nowait: false }, CONFIRM_SELECT_OK);

/** basic.recover with an explicit requeue flag (amqplib's recover() always sends requeue=true). */
export const basicRecover = (ch: Channel, requeue: boolean): Promise<object> => raw(ch).rpc(BASIC_RECOVER, { requeue }, BASIC_RECOVER_OK);

/** basic.qos with a prefetch_size (amqplib's qos() always sends 0). */
export const basicQos = (ch: Channel, prefetchSize: number, prefetchCount: number, global: boolean): Promise<object> =>
  raw(ch).rpc(BASIC_QOS, { prefetchSize, prefetchCount, global }, BASIC_QOS_OK);

/**
 * basic.publish with the method fields and properties exactly as given, for what amqplib's
 * publish() cannot express: it always clears `immediate` and never sends `clusterId`.
 */
export function publishRaw(
  ch: Channel,
  fields: { exchange: string; routingKey: string; mandatory?: boolean; immediate?: boolean },
  properties: Record<string, unknown>,
  content: Buffer,
): void {
  raw(ch).sendMessage({ mandatory: false, immediate: false, ticket: 0, ...fields }, { headers: {}, ...properties }, content);
}
