// Bad input never crashes the broker: seeded random mutations of a valid publishing and
// consuming session (flipped bytes, cut streams, wrong sizes, frames moved to other
// channels) are sent to a running broker over TCP. Every so often, and at the end, a
// well-behaved client must still be served. The broker's process would fail this test
// with an uncaught exception; what each broken connection gets back is not checked here
// (the conformance suite checks the exact reply codes of specific errors).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../helpers/random.js';
import { startBroker, type RunningBroker } from '../../src/index.js';
import { encodeBodyFrames, encodeContentHeaderFrame } from '../../src/protocol/frame-writer.js';
import { MethodId } from '../../src/protocol/generated/constants.js';
import { encodeMethodFrame } from '../../src/protocol/generated/methods.js';
import { encodeBasicProperties } from '../../src/protocol/generated/properties.js';
import { RawClient } from '../../conformance/raw-client.js';

const CASES = 600;
const CHECK_EVERY = 50;

/** A valid session on channel 1: declare, consume, publishes of assorted shapes, acks, qos. */
function session(r: () => number, queue: string): Buffer[] {
  const frames: Buffer[] = [];
  const ch = 1;
  frames.push(encodeMethodFrame(ch, { id: MethodId.QueueDeclare, args: { queue, passive: false, durable: false, exclusive: true, autoDelete: true, noWait: false, arguments: new Map() } }));
  frames.push(encodeMethodFrame(ch, { id: MethodId.BasicQos, args: { prefetchSize: 0, prefetchCount: 5, global: false } }));
  frames.push(encodeMethodFrame(ch, { id: MethodId.BasicConsume, args: { queue, consumerTag: 'fuzz', noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: new Map() } }));
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) {
    const props = encodeBasicProperties({
      contentType: 'text/plain',
      deliveryMode: r() < 0.5 ? 2 : 1,
      priority: Math.floor(r() * 10),
      headers: new Map([['k', { type: 'S', value: Buffer.from(`v${i}`) }], ['n', { type: 'I', value: i }]]),
      ...(r() < 0.3 ? { expiration: String(Math.floor(r() * 1000)) } : {}),
    });
    const size = [0, 1, 16, 500, 5000, 70000][Math.floor(r() * 6)]!;
    const body = Buffer.alloc(size, i);
    frames.push(encodeMethodFrame(ch, { id: MethodId.BasicPublish, args: { exchange: r() < 0.8 ? '' : 'amq.topic', routingKey: queue, mandatory: r() < 0.3, immediate: false } }));
    frames.push(encodeContentHeaderFrame(ch, 60, size, props));
    frames.push(...encodeBodyFrames(ch, body, 4096));
    if (r() < 0.5) frames.push(encodeMethodFrame(ch, { id: MethodId.BasicAck, args: { deliveryTag: i + 1, multiple: r() < 0.5 } }));
  }
  return frames;
}

/** One to three damages to the session's bytes. */
function mutate(r: () => number, frames: Buffer[]): Buffer {
  const parts = frames.map((f) => Buffer.from(f));
  const damages = 1 + Math.floor(r() * 3);
  for (let d = 0; d < damages; d++) {
    const i = Math.floor(r() * parts.length);
    const f = parts[i]!;
    if (f.length < 8) continue; // a frame dropped by an earlier damage
    switch (Math.floor(r() * 7)) {
      case 0: // flip a byte anywhere
        f[Math.floor(r() * f.length)] ^= 1 + Math.floor(r() * 255);
        break;
      case 1: // a wrong payload size
        f.writeUInt32BE(Math.floor(r() * (f.length + 64)), 3);
        break;
      case 2: // another channel (0, an unopened one, or the max)
        f.writeUInt16BE([0, 2, 65535][Math.floor(r() * 3)]!, 1);
        break;
      case 3: // another frame type
        f[0] = [1, 2, 3, 4, 8, 0, 255][Math.floor(r() * 7)]!;
        break;
      case 4: // drop a frame
        parts.splice(i, 1, Buffer.alloc(0));
        break;
      case 5: // repeat a frame
        parts.splice(i, 0, Buffer.from(f));
        break;
      default: // damage a byte inside the payload's arguments
        if (f.length > 12) f[11 + Math.floor(r() * (f.length - 12))] = Math.floor(r() * 256);
    }
  }
  const all = Buffer.concat(parts);
  // sometimes the stream just stops somewhere
  return r() < 0.2 ? all.subarray(0, Math.floor(r() * all.length)) : all;
}

describe.each([
  ['in memory', false],
  ['with a data dir (LevelDB)', true],
])('malformed input never takes the broker down (%s)', (_name, onDisk) => {
  let broker: RunningBroker;
  let dataDir: string | null = null;
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => {
    uncaught.push(e);
  };

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught);
    dataDir = onDisk ? await mkdtemp(join(tmpdir(), 'warren-fuzz-')) : null;
    broker = await startBroker({ port: 0, dataDir });
  });
  afterAll(async () => {
    process.off('uncaughtException', onUncaught);
    await broker?.close();
    if (dataDir !== null) await rm(dataDir, { recursive: true, force: true });
  });

  async function healthy(): Promise<void> {
    const conn = await connect(broker.url);
    try {
      const ch = await conn.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from('still here'), { persistent: true });
      let msg = await ch.get(queue, { noAck: true });
      while (msg === false) msg = await ch.get(queue, { noAck: true }); // the publish may still be in flight
      expect(msg.content.toString()).toBe('still here');
    } finally {
      await conn.close();
    }
  }

  it(`${CASES} damaged sessions, with a healthy client served in between`, async () => {
    for (let seed = 1; seed <= CASES; seed++) {
      const r = seededRandom(seed);
      const { client } = await RawClient.open(broker.url);
      await client.openChannel(1);
      client.write(mutate(r, session(r, `fuzz-${seed}`)));
      // the broker closes a connection it finds broken; a cut stream just ends here
      client.socket.end();
      await client.closed;
      if (seed % CHECK_EVERY === 0) await healthy();
      expect(uncaught, `seed ${seed}`).toEqual([]);
    }
    await healthy();
  }, 120_000);
});
