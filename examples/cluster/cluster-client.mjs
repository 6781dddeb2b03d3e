// A publisher and a consumer that keep going while the cluster's leader changes.
//
// AMQP 0-9-1 clients do not reconnect by themselves (amqplib does not): when the leader dies,
// the connection drops; the application connects again — to any node, a follower forwards it
// to the new leader — declares what it uses again and republishes what was not confirmed.
//
//   AMQP_URLS=amqp://guest:guest@127.0.0.1:5672,amqp://guest:guest@127.0.0.1:5673,amqp://guest:guest@127.0.0.1:5674 \
//     node examples/cluster/cluster-client.mjs
import amqp from 'amqplib';

const urls = (process.env.AMQP_URLS ?? 'amqp://guest:guest@127.0.0.1:5672').split(',');
const queue = 'cluster-demo';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let next = 0;

/** connect to the next node in the list; heartbeat=5 notices a dead peer within ~10 s */
async function connect() {
  for (;;) {
    const url = urls[next++ % urls.length];
    try {
      const conn = await amqp.connect(`${url}?heartbeat=5`);
      conn.on('error', () => {}); // 'close' follows
      return conn;
    } catch {
      await sleep(500);
    }
  }
}

let sent = 0;
let confirmed = 0;
let received = 0;
let redelivered = 0;
const unconfirmed = new Map(); // id → body, republished after a reconnect

async function publisher() {
  for (;;) {
    const conn = await connect();
    const closed = new Promise((r) => conn.once('close', r));
    try {
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue(queue, { durable: true });
      for (const [id, body] of unconfirmed) ch.publish('', queue, body, { persistent: true, messageId: id }); // at-least-once
      let open = true;
      void closed.then(() => (open = false));
      while (open) {
        const id = `m${++sent}`;
        const body = Buffer.from(`message ${id}`);
        unconfirmed.set(id, body);
        ch.publish('', queue, body, { persistent: true, messageId: id }, (err) => {
          if (!err) {
            unconfirmed.delete(id);
            confirmed++;
          }
        });
        await sleep(10);
      }
    } catch {
      // the connection went away mid-call
    }
    await closed;
    console.log(`publisher: connection lost, ${unconfirmed.size} unconfirmed will be sent again`);
  }
}

async function consumer() {
  for (;;) {
    const conn = await connect();
    const closed = new Promise((r) => conn.once('close', r));
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue(queue, { durable: true });
      await ch.prefetch(50);
      await ch.consume(queue, (m) => {
        if (m === null) return;
        received++;
        if (m.fields.redelivered) redelivered++;
        ch.ack(m);
      });
    } catch {
      // the connection went away mid-call
    }
    await closed;
    console.log('consumer: connection lost, reconnecting');
  }
}

setInterval(() => console.log(`sent ${sent} confirmed ${confirmed} received ${received} (redelivered ${redelivered})`), 1000).unref();
void publisher();
void consumer();
