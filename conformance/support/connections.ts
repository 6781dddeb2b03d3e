import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { randomBytes } from 'node:crypto';
import { amqpUrl } from './broker.js';

/** A name no other test (or earlier run) uses. */
export function uniqueName(prefix = 'conf'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/** An amqplib connection to the broker under test (or to `url`), with Nagle off. */
export async function connect(options?: Options.Connect | string): Promise<ChannelModel> {
  // Nagle off, as a latency-sensitive client would: otherwise every round trip waits ~40 ms for delayed acks
  const conn = await amqp.connect(typeof options === 'string' ? options : amqpUrl(), {
    noDelay: true,
    ...(typeof options === 'object' ? options : {}),
  });
  // errors are asserted with expectConnectionClose; keep an unasserted one from crashing the runner
  conn.on('error', () => {});
  return conn;
}

export async function openChannel(conn: ChannelModel): Promise<Channel> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  return ch;
}

export async function openConfirmChannel(conn: ChannelModel): Promise<ConfirmChannel> {
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  return ch;
}

/**
 * Runs fn with a fresh connection + channel and always closes the connection
 * (tolerating one that the broker already closed).
 */
export async function withChannel<T>(fn: (ch: Channel, conn: ChannelModel) => Promise<T>): Promise<T> {
  const conn = await connect();
  try {
    const ch = await openChannel(conn);
    return await fn(ch, conn);
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Proves a connection is still healthy: a fresh channel opens, answers a round trip and closes. */
export async function expectConnectionUsable(conn: ChannelModel): Promise<void> {
  const ch = await openChannel(conn);
  await ch.checkExchange('amq.direct');
  await ch.close();
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

/** The channel number amqplib opened `ch` on (reply-texts name it). */
export function channelNumber(ch: Channel): number {
  return (ch as unknown as { ch: number }).ch;
}
