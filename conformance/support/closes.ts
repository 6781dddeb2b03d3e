import type { Channel, ChannelModel } from 'amqplib';
import type { EventEmitter } from 'node:events';
import { expect } from 'vitest';
import { connect, expectConnectionUsable } from './connections.js';

/**
 * The one way the suite asserts that the broker closed something: a channel
 * (`expectChannelClose`), a connection (`expectConnectionClose`), or, with the raw client, the
 * same two as `RawClient` methods. All of them check what they got with `checkClose`.
 */

/** A channel.close or connection.close the broker sent. */
export interface Close {
  /** reply-code, e.g. 404 */
  code: number;
  /** reply-text, e.g. `NOT_FOUND - no queue 'q' in vhost '/'` */
  text: string;
  /**
   * [class-id, method-id] of the method the broker blames ([0, 0] for none); null where the
   * client does not report it (amqplib drops both from a connection.close)
   */
  method: [number, number] | null;
  /** amqplib's formatted message, e.g. `Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - …"` */
  message?: string;
}

/** What a test expects of a close: the code, the exact reply-text (or a pattern), optionally the method blamed. */
export interface ExpectedClose {
  code: number;
  text: string | RegExp;
  method?: readonly [number, number];
}

/** Asserts `actual` is the close `expected` describes. */
export function checkClose(actual: Close, expected: ExpectedClose): void {
  expect(actual.code, `reply-code of "${actual.text}"`).toBe(expected.code);
  if (typeof expected.text === 'string') expect(actual.text).toBe(expected.text);
  else expect(actual.text).toMatch(expected.text);
  if (expected.method !== undefined) {
    if (actual.method === null) throw new Error('this client does not report the method a close blames: check it with the RawClient');
    expect(actual.method, 'class-id, method-id').toEqual([...expected.method]);
  }
}

/**
 * The reply-text cut out of amqplib's message, which reads
 * `Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - no exchange 'x' in vhost '/'"`
 * (and `Handshake terminated by server: 403 (ACCESS-REFUSED) with message "…"` during the handshake).
 */
export function replyText(err: { message: string }): string {
  const m = /with message "([\s\S]*)"$/.exec(err.message);
  return m ? m[1]! : err.message;
}

type AmqplibCloseError = Error & { code?: number; classId?: number; methodId?: number };

function fromAmqplib(err: AmqplibCloseError, withMethod: boolean): Close {
  return { code: err.code ?? -1, text: replyText(err), method: withMethod ? [err.classId ?? 0, err.methodId ?? 0] : null, message: err.message };
}

/** Resolves on the emitter's next 'close' (events.once would reject on the 'error' that precedes it). */
export function closeEvent(emitter: EventEmitter | Channel | ChannelModel): Promise<void> {
  return new Promise((resolve) => (emitter as EventEmitter).once('close', () => resolve()));
}

function nextError(emitter: EventEmitter | Channel | ChannelModel): Promise<AmqplibCloseError> {
  return new Promise((resolve) => (emitter as EventEmitter).once('error', resolve));
}

const isThenable = (v: unknown): v is PromiseLike<unknown> => typeof (v as PromiseLike<unknown> | null)?.then === 'function';

/**
 * Runs `act` and requires that it fails because the broker closes the channel or connection.
 * `act` returning a promise (a synchronous method such as queue.declare): that promise must be
 * rejected. `act` returning anything else (an asynchronous method such as basic.publish or
 * basic.ack, which the broker never answers): `barrier()`, when given, is a synchronous method
 * sent right after it on the same channel, and must be rejected; frames of a channel are
 * handled in order, so a broker that does not close answers the barrier and the test fails at
 * once instead of timing out.
 */
async function provoke(act: () => unknown, what: string, barrier?: () => Promise<unknown>): Promise<void> {
  const result = act();
  const pending = isThenable(result) ? result : barrier?.();
  if (pending === undefined) return;
  await Promise.resolve(pending).then(
    () => {
      throw new Error(`expected the broker to close the ${what}, but it answered`);
    },
    () => undefined,
  );
}

/** amqplib's internal connection object behind a channel (the ChannelModel wraps the same one). */
interface ChannelInternals {
  connection: EventEmitter;
}

/** Opens a throwaway channel on the same connection as `ch` and does a round trip on it. */
async function expectSiblingChannelUsable(ch: Channel): Promise<void> {
  const ChannelClass = ch.constructor as new (connection: EventEmitter) => Channel & { open(): Promise<unknown> };
  const probe = new ChannelClass((ch as unknown as ChannelInternals).connection);
  probe.on('error', () => {});
  await probe.open();
  await probe.checkExchange('amq.direct');
  await probe.close();
}

/**
 * Asserts that the broker closes channel `ch` (channel.close) as `expected` says, and that only
 * the channel goes: the connection emits no error and a new channel on it works.
 *
 *   await expectChannelClose(ch, { code: 404, text: `NOT_FOUND - no queue '${q}' in vhost '/'`, method: [50, 10] },
 *     () => ch.checkQueue(q));
 *   await expectChannelClose(ch, { code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 42' },
 *     () => ch.ack(fakeMessage));           // asynchronous: a barrier is sent after it
 *   await expectChannelClose(ch, { code: 406, text: /timed out/ });   // no act: the broker closes on its own
 *
 * Resolves with the close, for further checks.
 */
export async function expectChannelClose(ch: Channel, expected: ExpectedClose, act?: () => unknown): Promise<Close> {
  const connection = (ch as unknown as ChannelInternals).connection;
  const errored = nextError(ch);
  const closed = closeEvent(ch);
  let connectionError: unknown = null;
  const onConnectionError = (e: unknown): void => {
    connectionError = e;
  };
  connection.on('error', onConnectionError);
  try {
    if (act !== undefined) await provoke(act, 'channel', () => ch.checkExchange('amq.direct'));
    const [err] = await Promise.all([errored, closed]);
    const close = fromAmqplib(err, true);
    checkClose(close, expected);
    // spec: a channel exception closes only the channel
    await expectSiblingChannelUsable(ch);
    expect(connectionError, 'the connection must survive a channel error').toBeNull();
    return close;
  } finally {
    connection.off('error', onConnectionError);
  }
}

/**
 * Asserts that the broker closes connection `conn` (connection.close) as `expected` says, and
 * that another connection is unaffected. `act` as for expectChannelClose, but no barrier follows
 * an asynchronous method (RabbitMQ closes the connection from the channel's process, so a
 * barrier on another channel may be answered first): return one from `act` yourself, a
 * synchronous method on the same channel, for a fast failure.
 * amqplib does not report the method a connection.close blames: to check it, use
 * RawClient.expectConnectionClose. Resolves with the close.
 */
export async function expectConnectionClose(conn: ChannelModel, expected: Omit<ExpectedClose, 'method'>, act?: () => unknown): Promise<Close> {
  const errored = nextError(conn);
  const closed = closeEvent(conn);
  const bystander = await connect();
  try {
    if (act !== undefined) await provoke(act, 'connection');
    const [err] = await Promise.all([errored, closed]);
    const close = fromAmqplib(err, false);
    checkClose(close, expected);
    await expectConnectionUsable(bystander);
    return close;
  } finally {
    await bystander.close().catch(() => {});
  }
}
