// RPC request-reply: one client makes sequential calls (publish a request, wait for its
// reply) to one server for --duration seconds (or --calls calls). Reports calls/s and the
// round-trip latency. Two variants:
//  - rpc-queue:  the client consumes an exclusive server-named reply queue (no-ack) and
//                sets reply_to to it, with a correlation_id per call;
//  - rpc-direct: RabbitMQ's direct reply-to: the client consumes the pseudo-queue
//                amq.rabbitmq.reply-to (no-ack) on the channel it publishes from.
// The server consumes the request queue with prefetch 1 and acks after replying, as the
// RabbitMQ RPC tutorial does; it echoes the body and the correlation_id to reply_to.
// Both ends run in this process (one event loop adds no cross-thread wake-up to the round
// trip), on the raw client by default (--client raw: Warren's codec, the least client time
// per call) or on amqplib (--client amqplib, what most Node services would use).
// Verification: every reply carries the correlation_id of the outstanding call and an
// intact body (producer id, sequence, fill), each call is answered exactly once, in order.
import { connect } from 'amqplib';
import { RawConnection } from '../lib/raw-amqp.mjs';
import { Histogram } from '../lib/histogram.mjs';
import { encodeBody, makePattern, nowMs } from '../lib/payload.mjs';
import { ProcSampler } from '../lib/proc-stats.mjs';
import { Verifier } from '../lib/verifier.mjs';
import { queueName, rate } from './common.mjs';

const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
/** One call may take this long before the run fails (a lost request or reply). */
const CALL_TIMEOUT_MS = 10_000;

const RPC_METRICS = [
  { key: 'callRate', label: 'sequential calls/s', better: 'higher' },
  { key: 'latencyP50Ms', label: 'round trip p50 (ms)', better: 'lower' },
  { key: 'latencyP99Ms', label: 'round trip p99 (ms)', better: 'lower' },
  { key: 'brokerCpuPercent', label: 'broker CPU (%)', better: 'lower' },
];

function rpc(name, direct) {
  return {
    name,
    description: direct
      ? 'sequential RPC calls with direct reply-to (amq.rabbitmq.reply-to): calls/s, round-trip p50'
      : 'sequential RPC calls with a reply queue + correlation_id: calls/s, round-trip p50',
    defaults: { persistent: false },
    metrics: RPC_METRICS,
    run: (o, broker, log) => runRpc(name, direct, o, broker, log),
  };
}

export const rpcQueue = rpc('rpc-queue', false);
export const rpcDirect = rpc('rpc-direct', true);

/**
 * One end of the RPC (client or server) on either client library, behind the few calls
 * the scenario makes. consume's callback gets (content, { replyTo, correlationId }, ackRef).
 */
async function open(url, client) {
  const errors = [];
  if (client === 'raw') {
    const c = await RawConnection.open(url);
    c.onError = (err) => errors.push(err);
    let onMessage = null;
    c.onDelivery = (tag, _redelivered, body, rawProperties) => {
      const p = c.P.decodeBasicProperties(rawProperties);
      onMessage?.(Buffer.from(body), { replyTo: p.replyTo, correlationId: p.correlationId }, tag);
    };
    return {
      errors,
      declareQueue: async (name, opts) => (await c.declareQueue(name, opts)).queue,
      deleteQueue: (name) => c.deleteQueue(name),
      prefetch: (n) => c.qos(n),
      consume: async (queue, noAck, fn) => {
        onMessage = fn;
        await c.consume(queue, noAck);
      },
      publish: (routingKey, body, properties) => c.publishOne('', routingKey, body, properties),
      ack: (tag) => c.ack(tag, false),
      close: () => c.close(),
    };
  }
  const connection = await connect(url, { noDelay: true });
  connection.on('error', (err) => errors.push(err));
  const ch = await connection.createChannel();
  ch.on('error', (err) => errors.push(err));
  return {
    errors,
    declareQueue: async (name, opts) => (await ch.assertQueue(name, opts)).queue,
    deleteQueue: (name) => ch.deleteQueue(name),
    prefetch: (n) => ch.prefetch(n),
    consume: (queue, noAck, fn) =>
      ch.consume(queue, (msg) => {
        if (msg !== null) fn(msg.content, msg.properties, msg);
      }, { noAck }),
    publish: (routingKey, body, properties) => ch.publish('', routingKey, body, properties),
    ack: (msg) => ch.ack(msg),
    close: () => connection.close(),
  };
}

async function runRpc(name, direct, o, broker, log) {
  const requests = queueName(name);
  const size = o.size;
  const pattern = makePattern(size);
  const verifier = new Verifier(size, pattern);
  const order = verifier.newOrderTracker();
  const server = await open(o.url, o.client);
  const client = await open(o.url, o.client);
  try {
    await server.deleteQueue(requests);
    await server.declareQueue(requests, { durable: false, autoDelete: false });
    await server.prefetch(1);
    await server.consume(requests, false, (content, properties, ackRef) => {
      // spec: replies go to the default exchange with the routing key taken from reply_to.
      server.publish(properties.replyTo, content, { correlationId: properties.correlationId });
      server.ack(ackRef);
    });

    // The reply path: a pending call's resolver, checked against its correlation_id.
    let waiting = null;
    let expectedId = '';
    let wrongReplies = 0;
    const onReply = (content, properties) => {
      if (waiting === null || properties.correlationId !== expectedId) {
        wrongReplies++;
        verifier.fail(`reply with correlation_id ${properties.correlationId} while waiting for ${expectedId}`);
        return;
      }
      const w = waiting;
      waiting = null;
      w(content);
    };
    let replyTo;
    if (direct) {
      await client.consume(DIRECT_REPLY_TO, true, onReply);
      replyTo = DIRECT_REPLY_TO;
    } else {
      replyTo = await client.declareQueue('', { exclusive: true, autoDelete: true, durable: false });
      await client.consume(replyTo, true, onReply);
    }

    const latency = new Histogram();
    const limit = o.calls ?? Infinity;
    const runMs = o.calls === null ? o.duration * 1000 : o.timeout * 1000;
    log(`${name}: sequential calls for ${o.calls ?? `${o.duration} s`}, ${size} B bodies…`);
    const sampler = new ProcSampler(broker.pid).start();
    const started = performance.now();
    const deadline = started + runMs;
    let calls = 0;
    let failure = null;
    while (calls < limit && performance.now() < deadline) {
      const sentAt = nowMs();
      const body = encodeBody(size, pattern, 0, calls, sentAt);
      expectedId = String(calls);
      const reply = new Promise((resolve) => {
        waiting = resolve;
      });
      client.publish(requests, body, { replyTo, correlationId: expectedId });
      let timer;
      const content = await Promise.race([reply, new Promise((resolve) => (timer = setTimeout(() => resolve(null), CALL_TIMEOUT_MS)))]);
      clearTimeout(timer);
      if (content === null) {
        failure = `call ${calls}: no reply within ${CALL_TIMEOUT_MS} ms${client.errors[0] ? ` (${client.errors[0].message})` : ''}`;
        break;
      }
      latency.recordMs(nowMs() - sentAt);
      verifier.check(content, false, order);
      calls++;
    }
    const elapsed = performance.now() - started;
    const brokerStats = sampler.stop();
    const summary = latency.summary();
    const verification = verifier.result([calls]);
    verification.wrongReplies = wrongReplies;
    const error = failure ?? client.errors[0]?.message ?? server.errors[0]?.message ?? null;
    if (error !== null || wrongReplies > 0) {
      verification.ok = false;
      verification.clientError = error ?? `${wrongReplies} unexpected replies`;
    }
    return {
      metrics: {
        callRate: rate(calls, elapsed),
        latencyP50Ms: summary?.p50Ms ?? null,
        latencyP99Ms: summary?.p99Ms ?? null,
        brokerCpuPercent: brokerStats.cpuPercent,
      },
      phases: { run: { calls, seconds: elapsed / 1000, client: o.client, replyTo: direct ? DIRECT_REPLY_TO : 'exclusive server-named queue', broker: brokerStats } },
      latency: summary,
      verification,
    };
  } finally {
    await server.deleteQueue(requests).catch(() => {});
    await client.close().catch(() => {});
    await server.close().catch(() => {});
  }
}
