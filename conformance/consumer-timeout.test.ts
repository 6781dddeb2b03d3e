import { describe, expect, it } from 'vitest';
import { closedWith, connect, isWarren, openChannel } from './helpers.js';

/**
 * consumer_timeout. RabbitMQ 3.10 only has the broker-wide setting (30 min by default),
 * so the per-queue x-consumer-timeout argument (RabbitMQ 3.12+, LavinMQ) is tested
 * against Warren only.
 */
describe('consumer timeout (Warren extension: x-consumer-timeout)', () => {
  it.skipIf(!isWarren())('an unacked delivery older than the limit closes the channel with 406 and is requeued (Warren extension)', async () => {
    const conn = await connect();
    try {
      const ch = await openChannel(conn);
      const { queue } = await ch.assertQueue('', { exclusive: true, arguments: { 'x-consumer-timeout': 200 } });
      ch.sendToQueue(queue, Buffer.from('slow'));
      const closed = closedWith(ch);
      await ch.consume(queue, () => {}, { noAck: false });
      const err = await closed;
      expect(err.code).toBe(406);
      expect(err.message).toContain(
        'PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 200 ms.',
      );
      const ch2 = await openChannel(conn);
      const again = await ch2.get(queue, { noAck: true });
      expect(again && again.fields.redelivered).toBe(true);
    } finally {
      await conn.close().catch(() => {});
    }
  });
});
