// RPC server: answers fib(n) requests from `rpc_queue`.
// Run: node examples/rpc/rpc-server.mjs      (AMQP_URL defaults to amqp://guest:guest@localhost:5672)
import { connect } from 'amqplib';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672';
const QUEUE = 'rpc_queue';
/** Bound the work one request can ask for. */
const MAX_N = 10_000;

/** Iterative with BigInt so large n stays exact. */
function fib(n) {
  let a = 0n;
  let b = 1n;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

const connection = await connect(url);
const channel = await connection.createChannel();
await channel.assertQueue(QUEUE, { durable: false });
// One unacknowledged request at a time: with several servers running, the broker
// hands the next request to whichever server is free.
await channel.prefetch(1);

await channel.consume(QUEUE, (msg) => {
  if (msg === null) {
    // The broker cancelled our consumer (e.g. the queue was deleted).
    console.error(' [!] consumer cancelled by the broker');
    process.exitCode = 1;
    void connection.close();
    return;
  }
  const { replyTo, correlationId } = msg.properties;
  const text = msg.content.toString();
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  const answer = n <= MAX_N ? fib(n).toString() : `error: expected an integer from 0 to ${MAX_N}, got ${JSON.stringify(text)}`;
  console.log(` [.] fib(${text}) requested (correlationId ${correlationId})`);
  if (replyTo) {
    // The reply carries the request's correlationId so the client can match it.
    channel.sendToQueue(replyTo, Buffer.from(answer), { correlationId });
  }
  // Ack only after replying: if we crash before this, the request is redelivered.
  channel.ack(msg);
});
console.log(` [x] Awaiting RPC requests on '${QUEUE}' at ${url.replace(/\/\/[^@]*@/, '//')} (Ctrl-C to stop)`);

const stop = async () => {
  await connection.close();
  process.exit();
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
