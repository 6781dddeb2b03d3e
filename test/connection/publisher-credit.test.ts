// Publisher flow control (credit per delivery pass, queue.ts PUBLISH_CREDIT) over a real
// socket: a publisher whose bytes are all in the broker's socket buffer still gets no more
// than its queue's credit per turn of the event loop, also when one socket read holds
// thousands of publishes (client sockets read into a 256 KiB shared buffer). A regression
// once let a connection handle a whole shared read past its credit: a fast publisher then
// starved its queue's consumers (manual ack fell to 0.4x RabbitMQ in the suite) and no test
// noticed.
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect } from 'amqplib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RawClient, basicPublishArgs, encodeBody, encodeContentHeader, encodeMethod, M } from '../../conformance/support/raw-client.js';
import { startBroker, type RunningBroker } from '../../src/index.js';
import { PUBLISH_CREDIT, Queue } from '../../src/queue/queue.js';

let broker: RunningBroker | null = null;
afterEach(async () => {
  vi.restoreAllMocks();
  await broker?.close();
  broker = null;
});

/** resolves on the event loop's next check phase (where queues run their delivery passes) */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('publisher credit over a socket', () => {
  it('a publisher gets at most its queue credit per turn, whatever one socket read holds, and all of it in the end', async () => {
    broker = await startBroker({ host: '127.0.0.1', port: 0, dataDir: null });
    // the queue, as the broker holds it, once a consumer is added
    let queue: Queue | null = null;
    const addConsumer = Queue.prototype.addConsumer;
    vi.spyOn(Queue.prototype, 'addConsumer').mockImplementation(function (this: Queue, ...a: Parameters<Queue['addConsumer']>) {
      queue = this;
      return addConsumer.apply(this, a);
    });

    // a consumer that takes one message and never acks: every later one stays ready
    const consumerConn = await connect(broker.url);
    const ch = await consumerConn.createChannel();
    await ch.assertQueue('credit-q', { durable: false });
    await ch.prefetch(1);
    await ch.consume('credit-q', () => {}, { noAck: false });
    expect(queue).not.toBe(null);
    const q = queue as unknown as Queue;

    const socket = netConnect(broker.port, '127.0.0.1');
    await once(socket, 'connect');
    const publisher = new RawClient(socket);
    await publisher.handshake(broker.url);
    await publisher.openChannel(1);
    // 3,000 publishes (~190 KiB) in one write: one or two of the broker's socket reads
    const N = 3000;
    const one = Buffer.concat([encodeMethod(1, M.BasicPublish, basicPublishArgs('', 'credit-q')), encodeContentHeader(1, 16), encodeBody(1, Buffer.alloc(16, 7))]);
    const all = Buffer.concat(Array.from({ length: N }, () => one));
    expect(all.length).toBeGreaterThan(20 * PUBLISH_CREDIT * one.length);
    publisher.write(all);

    // the ready count, turn by turn, until every publish is in
    let last = q.messageCount;
    let largestStep = 0;
    let turns = 0;
    while (q.messageCount + 1 < N) {
      await turn();
      turns++;
      largestStep = Math.max(largestStep, q.messageCount - last);
      last = q.messageCount;
      if (turns > 100_000) break;
    }
    expect(q.messageCount + 1).toBe(N); // one is with the consumer, unacked
    // a pass grants at most PUBLISH_CREDIT; the message that exhausts it is counted too
    expect(largestStep).toBeLessThanOrEqual(PUBLISH_CREDIT + 1);
    expect(turns).toBeGreaterThanOrEqual(Math.floor(N / (PUBLISH_CREDIT + 1)));

    socket.destroy();
    await consumerConn.close();
  });
});
