// RPC client: sends fib(n) requests to `rpc_queue` and waits for each answer on its own
// exclusive, server-named reply queue.
// Run: node examples/rpc/rpc-client.mjs 10 20 30      (AMQP_URL, RPC_TIMEOUT_MS optional)
import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672';
const QUEUE = 'rpc_queue';
const timeoutMs = Number(process.env.RPC_TIMEOUT_MS ?? 5000);
const numbers = process.argv.length > 2 ? process.argv.slice(2) : ['10', '20', '30'];

const connection = await connect(url);
const channel = await connection.createChannel();

// queue '' = let the broker name it; exclusive = deleted when this connection closes.
const { queue: replyQueue } = await channel.assertQueue('', { exclusive: true });

/** correlationId → the call waiting for it */
const pending = new Map();

await channel.consume(
  replyQueue,
  (msg) => {
    if (msg === null) return;
    const call = pending.get(msg.properties.correlationId);
    if (call === undefined) {
      // A reply to a call that already timed out, or not ours at all: ignore it.
      console.warn(` [?] ignoring reply with unknown correlationId ${msg.properties.correlationId}`);
      return;
    }
    pending.delete(msg.properties.correlationId);
    clearTimeout(call.timer);
    call.resolve(msg.content.toString());
  },
  { noAck: true },
);

// mandatory: if no queue named rpc_queue exists (no server started yet), the broker
// returns the request instead of silently dropping it.
channel.on('return', (msg) => {
  const call = pending.get(msg.properties.correlationId);
  if (call === undefined) return;
  pending.delete(msg.properties.correlationId);
  clearTimeout(call.timer);
  call.reject(new Error(`request returned by the broker (${msg.fields.replyText}): is rpc-server.mjs running?`));
});

function callFib(n) {
  const correlationId = randomUUID();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(correlationId);
      reject(new Error(`fib(${n}) timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    pending.set(correlationId, { resolve, reject, timer });
    channel.sendToQueue(QUEUE, Buffer.from(String(n)), { correlationId, replyTo: replyQueue, mandatory: true });
  });
}

let failed = false;
for (const n of numbers) {
  try {
    console.log(` [.] fib(${n}) = ${await callFib(n)}`);
  } catch (err) {
    failed = true;
    console.error(` [!] ${err.message}`);
  }
}
await connection.close();
process.exitCode = failed ? 1 : 0;
