// RPC client using RabbitMQ's direct reply-to: no reply queue is declared; replies come
// straight back to this channel through the pseudo-queue `amq.rabbitmq.reply-to`.
// Works with the same rpc-server.mjs.
// Run: node examples/rpc/direct-reply-to-client.mjs 10 20 30      (AMQP_URL, RPC_TIMEOUT_MS optional)
import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672';
const QUEUE = 'rpc_queue';
const REPLY_TO = 'amq.rabbitmq.reply-to';
const timeoutMs = Number(process.env.RPC_TIMEOUT_MS ?? 5000);
const numbers = process.argv.length > 2 ? process.argv.slice(2) : ['10', '20', '30'];

const connection = await connect(url);
const channel = await connection.createChannel();

const pending = new Map();

// RabbitMQ: consume from amq.rabbitmq.reply-to in no-ack mode *before* publishing with
// replyTo=amq.rabbitmq.reply-to, on the same channel; the broker rewrites replyTo into a
// per-channel address that the server answers to.
await channel.consume(
  REPLY_TO,
  (msg) => {
    if (msg === null) return;
    const call = pending.get(msg.properties.correlationId);
    if (call === undefined) {
      console.warn(` [?] ignoring reply with unknown correlationId ${msg.properties.correlationId}`);
      return;
    }
    pending.delete(msg.properties.correlationId);
    clearTimeout(call.timer);
    call.resolve(msg.content.toString());
  },
  { noAck: true },
);

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
    channel.sendToQueue(QUEUE, Buffer.from(String(n)), { correlationId, replyTo: REPLY_TO, mandatory: true });
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
