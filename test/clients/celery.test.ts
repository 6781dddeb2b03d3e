import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/index.js';
import { requireInstalled, run, runsOk } from './installed.js';

// A real Celery worker (Debian python3-celery, kombu's py-amqp transport) against Warren:
// countdown, ETA, retry, acks_late (worker killed mid-task) and priorities. The flow is
// test/clients/celery/celery_flow.py; it also passes against RabbitMQ 3.10:
//   /usr/bin/python3 test/clients/celery/celery_flow.py amqp://guest:guest@127.0.0.1:5672//

// Debian's python3 (where python3-celery installs), not whatever python3 comes first on the PATH
const PYTHON = '/usr/bin/python3';
const FLOW = fileURLToPath(new URL('./celery/celery_flow.py', import.meta.url));
const installed = runsOk(PYTHON, ['-c', 'import celery, kombu, amqp']);

let broker: RunningBroker;
beforeAll(async () => {
  broker = await startBroker();
});
afterAll(() => broker.close());

it('a Celery worker runs countdown, ETA, retried, acks_late and prioritised tasks', { timeout: 120_000 }, async (ctx) => {
  requireInstalled(ctx, installed, 'python3-celery');
  const r = await run(PYTHON, [FLOW, `${broker.url}//`]);
  const output = r.stdout + r.stderr;
  expect(output).not.toMatch(/^FAIL /m);
  expect(output.match(/^PASS /gm)?.length, output).toBe(7);
  expect(r.code, output).toBe(0);
});
