import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireExchangeType, Scope } from './support/index.js';

// The test support itself, against both brokers: one failing case must not take the rest of a
// file down with it.

const scope = new Scope();
beforeAll(() => scope.open());
afterEach(() => scope.cleanup());
afterAll(() => scope.close());

describe('conformance support', () => {
  it('Scope replaces its admin connection after the broker closed it (503 on a declare through it)', async () => {
    // an unknown exchange type is a connection error (503 COMMAND_INVALID) on both brokers
    await expect(scope.exchange('x', 'x-no-such-type')).rejects.toThrow();
    const q = await scope.queue('after-503');
    expect((await scope.ch.checkQueue(q)).queue).toBe(q);
  });

  it('requireExchangeType fails naming the plugin to enable when the type is unknown', async () => {
    await expect(requireExchangeType('x-no-such-type', 'rabbitmq_no_such_plugin')).rejects.toThrow(
      "the broker does not know exchange type 'x-no-such-type': enable its plugin with `rabbitmq-plugins enable rabbitmq_no_such_plugin`",
    );
    await requireExchangeType('topic', 'none needed');
  });
});
