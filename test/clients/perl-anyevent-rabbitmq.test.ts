import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/index.js';
import { requireInstalled, run, runsOk } from './installed.js';

// Perl's AnyEvent::RabbitMQ (Debian libanyevent-rabbitmq-perl) over Net::AMQP, which opens with the
// AMQP 0-9 header "AMQP" 1 1 0 9: connect, declare, confirm, publish, consume, ack, close.

const SCRIPT = fileURLToPath(new URL('./anyevent-rabbitmq.pl', import.meta.url));
const installed = runsOk('perl', ['-MAnyEvent::RabbitMQ', '-e1']);

let broker: RunningBroker;
beforeAll(async () => {
  broker = await startBroker();
});
afterAll(() => broker.close());

it('an AnyEvent::RabbitMQ session (AMQP 0-9 header) works end to end', { timeout: 30_000 }, async (ctx) => {
  requireInstalled(ctx, installed, 'libanyevent-rabbitmq-perl');
  const r = await run('perl', [SCRIPT, broker.host, String(broker.port)]);
  expect(r.stdout + r.stderr).toContain('consumed: hello from AnyEvent::RabbitMQ');
  expect(r.code, r.stdout + r.stderr).toBe(0);
});
