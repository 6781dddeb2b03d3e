import type { Channel, ChannelModel } from 'amqplib';
import { once } from 'node:events';
import { expect } from 'vitest';
import { connect, openChannel } from './helpers.js';

/** What amqplib puts on the Error it emits for a server-initiated channel.close / connection.close. */
export interface AmqpCloseError {
  code?: number;
  classId?: number;
  methodId?: number;
  message: string;
}

/**
 * The broker's reply-text, cut out of amqplib's message, which reads
 * `Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - no exchange 'x' in vhost '/'"`.
 */
export function replyText(err: { message: string }): string {
  const m = /with message "(.*)"$/s.exec(err.message);
  return m ? m[1]! : err.message;
}

/**
 * Resolves on 'close'. (events.once(emitter, 'close') would reject when 'error' fires
 * first, which is exactly what a server-initiated close does.)
 */
export function closeEvent(emitter: Channel | ChannelModel): Promise<void> {
  return new Promise((resolve) => emitter.once('close', () => resolve()));
}

/** Proves a connection is still healthy: a fresh channel opens and closes. */
export async function expectConnectionUsable(conn: ChannelModel): Promise<void> {
  const ch = await openChannel(conn);
  await ch.checkExchange('amq.direct');
  await ch.close();
}

/**
 * Runs `act` (which must make the broker close `ch`), and asserts a channel-level error:
 * the pending call rejects, the channel emits 'error' with `code` and a reply-text matching
 * `text`, the channel closes, and the connection keeps working. `act` must return the
 * promise of a synchronous method (for an asynchronous one such as basic.publish, follow it
 * with a synchronous barrier like checkExchange and return that), so a broker that does not
 * close the channel makes the test fail at once rather than time out.
 * Resolves with the reply-text and the class/method ids the broker blamed.
 */
export async function expectChannelError(
  conn: ChannelModel,
  ch: Channel,
  act: () => Promise<unknown>,
  code: number,
  text: RegExp | string,
): Promise<{ replyText: string; classId?: number; methodId?: number }> {
  const errored = once(ch, 'error') as Promise<[AmqpCloseError]>;
  const closed = closeEvent(ch);
  let connErr: unknown = null;
  const onConnError = (e: unknown): void => {
    connErr = e;
  };
  conn.on('error', onConnError);
  try {
    await act().then(
      () => {
        throw new Error('expected the broker to close the channel, but the call succeeded');
      },
      () => undefined,
    );
    const [err] = await errored;
    await closed;
    expect(err.code).toBe(code);
    const reply = replyText(err);
    if (typeof text === 'string') expect(reply).toBe(text);
    else expect(reply).toMatch(text);
    // a channel error must not take the connection down (spec: channel exceptions close only the channel)
    await expectConnectionUsable(conn);
    expect(connErr).toBeNull();
    return { replyText: reply, classId: err.classId, methodId: err.methodId };
  } finally {
    conn.off('error', onConnError);
  }
}

/**
 * Runs `act` (which must make the broker close the whole connection) and asserts the
 * connection emits 'error' with `code` and reply-text matching `text`, then 'close'; and that
 * another, independent connection is unaffected. Resolves with the reply-text.
 */
export async function expectConnectionError(
  conn: ChannelModel,
  act: () => Promise<unknown>,
  code: number,
  text: RegExp | string,
): Promise<string> {
  const bystander = await connect();
  try {
    const errored = once(conn, 'error') as Promise<[AmqpCloseError]>;
    const closed = closeEvent(conn);
    // the pending call must be rejected by the connection going away, never answered
    await act().then(
      () => {
        throw new Error('expected the broker to close the connection, but the call succeeded');
      },
      () => undefined,
    );
    const [err] = await errored;
    await closed;
    expect(err.code).toBe(code);
    const reply = replyText(err);
    if (typeof text === 'string') expect(reply).toBe(text);
    else expect(reply).toMatch(text);
    await expectConnectionUsable(bystander);
    return reply;
  } finally {
    await bystander.close().catch(() => {});
  }
}

/** The tuning amqplib keeps on its internal connection object once the handshake is done. */
export interface TunedConnection {
  frameMax: number;
  channelMax: number;
  heartbeat: number;
  serverProperties: Record<string, unknown> & { capabilities?: Record<string, unknown> };
}

export function tuned(conn: ChannelModel): TunedConnection {
  return conn.connection as unknown as TunedConnection;
}
