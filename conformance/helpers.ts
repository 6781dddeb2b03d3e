import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { inject } from 'vitest';

export const amqpUrl = (): string => inject('amqpUrl');
/** Warren-only extensions are skipped when the suite runs against another broker. */
export const isWarren = (): boolean => inject('brokerKind') === 'warren';

export function uniqueName(prefix = 'conf'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

export async function connect(options?: Options.Connect | string): Promise<ChannelModel> {
  // Nagle off, as a latency-sensitive client would: otherwise every round trip waits ~40 ms for delayed acks
  const conn = await amqp.connect(typeof options === 'string' ? options : amqpUrl(), {
    noDelay: true,
    ...(typeof options === 'object' ? options : {}),
  });
  // errors are asserted through close events / rejected promises; keep them from crashing the runner
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

/** Resolves with the error a channel (or connection) closed with. */
export async function closedWith(emitter: Channel | ChannelModel): Promise<{ code?: number; message: string }> {
  const [err] = (await once(emitter, 'error')) as [{ code?: number; message: string }];
  return err;
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

/** Resolves with the next `n` messages consumed from queue (no-ack unless told otherwise). */
export async function consumeN(ch: Channel, queue: string, n: number, options: Options.Consume = { noAck: true }): Promise<amqp.ConsumeMessage[]> {
  const got: amqp.ConsumeMessage[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const { consumerTag } = await ch.consume(
    queue,
    (msg) => {
      if (msg) got.push(msg);
      if (got.length === n) resolve();
    },
    options,
  );
  if (n > 0) await done;
  await ch.cancel(consumerTag);
  return got;
}
