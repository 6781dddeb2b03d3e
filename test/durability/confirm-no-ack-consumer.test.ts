// Persistent messages with confirms into a durable queue whose no-ack consumer takes each one
// as it arrives: every publish is confirmed. (A message handed straight to a waiting consumer
// had its store write completed before its publisher wired up the confirm, and the confirm
// was lost: a publisher with a confirm window hung; found by bench/ `confirm`.)
import { afterEach, expect, it } from 'vitest';
import { openConfirmChannel, openConnection, removeDir, spawnWarren, tempDataDir, type WarrenChild } from './harness.js';

let warren: WarrenChild | null = null;
let dir: string | null = null;
afterEach(async () => {
  await warren?.kill9();
  warren = null;
  if (dir !== null) await removeDir(dir);
  dir = null;
});

it('every persistent publish is confirmed while a no-ack consumer keeps the durable queue empty', async () => {
  dir = await tempDataDir();
  warren = await spawnWarren(dir);
  const consumerConn = await openConnection(warren.url);
  const sub = await consumerConn.createChannel();
  await sub.assertQueue('confirm.noack', { durable: true });
  const total = 5_000;
  let received = 0;
  const allIn = new Promise<void>((resolve) => {
    void sub.consume('confirm.noack', () => {
      if (++received === total) resolve();
    }, { noAck: true });
  });
  const producerConn = await openConnection(warren.url);
  const pub = await openConfirmChannel(producerConn);
  let confirmed = 0;
  // one at a time, so that the queue is empty (and its consumer waiting) at every publish
  for (let i = 0; i < total; i++) {
    await new Promise<void>((resolve, reject) => {
      pub.sendToQueue('confirm.noack', Buffer.from(String(i)), { persistent: true }, (err) => (err ? reject(err) : resolve()));
    });
    confirmed++;
  }
  await allIn;
  expect(confirmed).toBe(total);
  expect(received).toBe(total);
  await producerConn.close();
  await consumerConn.close();
}, 60_000);
