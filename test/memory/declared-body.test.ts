// A content header declares the body size up front; a broker that reserved that much at
// the first body frame could be made to reserve gigabytes by a few channels that then send
// one byte each (500 channels × 128 MiB = 64 GB of address space, which an RSS-based alarm
// never sees). The broker runs in a child process, and what it reserves is read there.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArgReader, M, RawClient, args, basicPublishArgs, encodeBody, encodeFrame, encodeMethod, FrameType, queueDeclareArgs } from '../../conformance/support/raw-client.js';

const CHILD = fileURLToPath(new URL('./broker-child.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
const CHANNELS = 500;
const DECLARED = 128 * 1024 * 1024; // the largest body the broker accepts
const SENT = 1024; // what each channel actually sends of it
const MiB = 1024 * 1024;

let child: ChildProcess;
let url = '';

function request<T>(message: string, key: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (m: Record<string, unknown>): void => {
      if (!(key in m)) return;
      child.off('message', onMessage);
      resolve(m[key] as T);
    };
    child.on('message', onMessage);
    if (message !== '') child.send(message);
  });
}

beforeAll(async () => {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npm run build\` first (npm test does)`);
  child = fork(CHILD, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  url = await request<string>('', 'url');
});

afterAll(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.send('close');
    await exited;
  }
});

describe('declared body sizes', () => {
  it(`${CHANNELS} channels declaring ${DECLARED / MiB} MiB bodies and sending ${SENT} bytes each: the broker reserves what arrived, not what was declared`, async () => {
    const { client } = await RawClient.open(url);
    await client.openChannel(CHANNELS + 1);
    client.sendMethod(CHANNELS + 1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
    const queue = new ArgReader((await client.expectMethod(M.QueueDeclareOk)).args).shortstr();
    const before = await request<NodeJS.MemoryUsage>('measure', 'memory');

    const frames: Buffer[] = [];
    for (let ch = 1; ch <= CHANNELS; ch++) {
      frames.push(
        encodeMethod(ch, M.ChannelOpen, args().shortstr('').toBuffer()),
        encodeMethod(ch, M.BasicPublish, basicPublishArgs('', queue)),
        encodeFrame(FrameType.Header, ch, args().short(60).short(0).longlong(BigInt(DECLARED)).short(0).toBuffer()),
        encodeBody(ch, Buffer.alloc(SENT, ch & 0xff)),
      );
    }
    client.write(Buffer.concat(frames));
    // frames of a connection are handled in order: once this declare is answered, every
    // channel has its body frame in (channel.open-oks come first, in channel order)
    client.sendMethod(CHANNELS + 1, M.QueueDeclare, queueDeclareArgs('', { exclusive: true }));
    for (let ch = 1; ch <= CHANNELS; ch++) await client.expectMethod(M.ChannelOpenOk);
    await client.expectMethod(M.QueueDeclareOk);
    const during = await request<NodeJS.MemoryUsage>('measure', 'memory');

    const reserved = during.arrayBuffers - before.arrayBuffers;
    // what arrived is CHANNELS × SENT = 0.5 MiB; declared was 62.5 GiB
    expect(reserved, `arrayBuffers grew by ${(reserved / MiB).toFixed(1)} MiB`).toBeLessThan(32 * MiB);
    expect(during.rss - before.rss, 'rss').toBeLessThan(256 * MiB);

    // a body sent in many frames is still put together whole (on a channel of its own)
    const ch = CHANNELS + 2;
    await client.openChannel(ch);
    const body = Buffer.alloc(3 * MiB + 5);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const parts = [encodeMethod(ch, M.BasicPublish, basicPublishArgs('', queue))];
    parts.push(encodeFrame(FrameType.Header, ch, args().short(60).short(0).longlong(BigInt(body.length)).short(0).toBuffer()));
    for (let o = 0; o < body.length; o += 100_000) parts.push(encodeBody(ch, body.subarray(o, o + 100_000)));
    client.write(Buffer.concat(parts));
    client.sendMethod(ch, M.BasicGet, args().short(0).shortstr(queue).bits(true).toBuffer());
    await client.expectMethod(M.BasicGetOk);
    await client.nextFrame(); // content header
    const received: Buffer[] = [];
    for (let n = 0; n < body.length; ) {
      const f = await client.nextFrame();
      received.push(Buffer.from(f.payload));
      n += f.payload.length;
    }
    expect(Buffer.concat(received).equals(body)).toBe(true);
    client.destroy();
  }, 60_000);
});
