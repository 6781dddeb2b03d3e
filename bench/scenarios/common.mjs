// Pieces every scenario uses: queue setup/teardown on a short-lived admin connection,
// opening producers and consumers, and a shared verifier.
import { connect } from 'amqplib';
import { Consumer } from '../lib/consumer.mjs';
import { makePattern } from '../lib/payload.mjs';
import { Producer } from '../lib/producer.mjs';
import { Verifier } from '../lib/verifier.mjs';

/** Queue names are fixed per scenario so a crashed run's leftovers are removed by the next run. */
export function queueName(scenario) {
  return `warren-perf-${scenario}`;
}

/** Deletes (if present) and declares the benchmark queue. */
export async function freshQueue(url, queue, durable) {
  const connection = await connect(url, { noDelay: true });
  connection.on('error', () => {});
  try {
    const ch = await connection.createChannel();
    await ch.deleteQueue(queue);
    await ch.assertQueue(queue, { durable, autoDelete: false, exclusive: false });
    await ch.close();
  } finally {
    await connection.close();
  }
}

/** Deletes the benchmark queue; returns its message count at deletion, or null on failure. */
export async function deleteQueue(url, queue) {
  try {
    const connection = await connect(url, { noDelay: true });
    connection.on('error', () => {});
    try {
      const ch = await connection.createChannel();
      const ok = await ch.deleteQueue(queue);
      return ok.messageCount;
    } finally {
      await connection.close().catch(() => {});
    }
  } catch {
    return null;
  }
}

/** Opens `o.producers` producers and a verifier for bodies of `o.size`. */
export async function openProducers(o, queue) {
  const pattern = makePattern(o.size);
  const producers = [];
  for (let id = 0; id < o.producers; id++) {
    const p = new Producer({
      id,
      url: o.url,
      exchange: '',
      routingKey: queue,
      size: o.size,
      pattern,
      persistent: o.persistent,
      confirm: o.confirm,
    });
    await p.open();
    producers.push(p);
  }
  return { producers, verifier: new Verifier(o.size, pattern) };
}

export async function openConsumers(o, queue, verifier, n = o.consumers) {
  const consumers = [];
  for (let i = 0; i < n; i++) {
    const c = new Consumer({ url: o.url, queue, noAck: o.noAck, prefetch: o.prefetch, ackEvery: o.ackEvery, verifier });
    await c.open();
    consumers.push(c);
  }
  return consumers;
}

export async function closeAll(clients) {
  await Promise.all(clients.map((c) => c.close()));
}

/** Splits `total` messages over `n` producers (the first ones take the remainder). */
export function share(total, n, i) {
  return Math.floor(total / n) + (i < total % n ? 1 : 0);
}

export function firstError(clients) {
  for (const c of clients) if (c.error !== null) return c.error;
  return null;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function rate(count, ms) {
  return ms > 0 ? Math.round((count * 1000) / ms) : null;
}
