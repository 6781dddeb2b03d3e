import type { Channel, ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, drain, openChannel, uniqueName } from './support/index.js';

/**
 * End-to-end routing over the wire. Every check publishes and then drains with basic.get on
 * the same channel: the broker handles a channel's methods in order, so a publish has reached
 * its queues before a later get on that channel is answered.
 */
let conn: ChannelModel;
let ch: Channel;

beforeAll(async () => {
  conn = await connect();
  ch = await openChannel(conn);
});

afterAll(async () => {
  // exclusive queues go with the connection
  await conn.close().catch(() => {});
});

async function exclusiveQueue(): Promise<string> {
  const { queue } = await ch.assertQueue('', { exclusive: true });
  return queue;
}

/** Declares an exchange that is deleted when the test ends. */
async function withExchange(type: string, fn: (exchange: string) => Promise<void>): Promise<void> {
  const exchange = uniqueName(`x-${type}`);
  await ch.assertExchange(exchange, type, { durable: false, autoDelete: false });
  try {
    await fn(exchange);
  } finally {
    await ch.deleteExchange(exchange);
  }
}

/** Publishes one message per routing key (body = the key, or the given body) and drains every queue. */
async function routeAll(exchange: string, queues: string[], keys: string[]): Promise<string[][]> {
  for (const key of keys) ch.publish(exchange, key, Buffer.from(key === '' ? '<empty>' : key));
  const out: string[][] = [];
  for (const q of queues) out.push(await drain(ch, q));
  return out;
}

describe('direct exchange', () => {
  it('delivers to every queue bound with the same key, and only those', async () => {
    await withExchange('direct', async (x) => {
      const q1 = await exclusiveQueue();
      const q2 = await exclusiveQueue();
      const q3 = await exclusiveQueue();
      await ch.bindQueue(q1, x, 'k');
      await ch.bindQueue(q2, x, 'k');
      await ch.bindQueue(q3, x, 'other');
      const [r1, r2, r3] = await routeAll(x, [q1, q2, q3], ['k', 'other', 'nope', 'K']);
      expect(r1).toEqual(['k']);
      expect(r2).toEqual(['k']);
      expect(r3).toEqual(['other']);
    });
  });

  it('a queue bound under two keys receives messages for either', async () => {
    await withExchange('direct', async (x) => {
      const q = await exclusiveQueue();
      await ch.bindQueue(q, x, 'a');
      await ch.bindQueue(q, x, 'b');
      const [r] = await routeAll(x, [q], ['a', 'b', 'c']);
      expect(r).toEqual(['a', 'b']);
    });
  });

  it('amq.direct is pre-declared', async () => {
    const q = await exclusiveQueue();
    await ch.bindQueue(q, 'amq.direct', q);
    const [r] = await routeAll('amq.direct', [q], [q]);
    expect(r).toEqual([q]);
  });
});

describe('fanout exchange', () => {
  it('delivers to every bound queue whatever the routing key', async () => {
    await withExchange('fanout', async (x) => {
      const q1 = await exclusiveQueue();
      const q2 = await exclusiveQueue();
      await ch.bindQueue(q1, x, '');
      await ch.bindQueue(q2, x, 'ignored');
      const [r1, r2] = await routeAll(x, [q1, q2], ['a', '', 'b.c']);
      expect(r1).toEqual(['a', '<empty>', 'b.c']);
      expect(r2).toEqual(['a', '<empty>', 'b.c']);
    });
  });

  it('a queue bound twice receives one copy', async () => {
    await withExchange('fanout', async (x) => {
      const q = await exclusiveQueue();
      await ch.bindQueue(q, x, 'one');
      await ch.bindQueue(q, x, 'two');
      const [r] = await routeAll(x, [q], ['m']);
      expect(r).toEqual(['m']);
    });
  });
});

describe('topic exchange', () => {
  const keys = ['a', 'a.b', 'a.b.c', 'a.x.b', 'a.x.y.b', 'b', 'x.a.b', ''];

  async function topicMatches(pattern: string): Promise<string[]> {
    let matched: string[] = [];
    await withExchange('topic', async (x) => {
      const q = await exclusiveQueue();
      await ch.bindQueue(q, x, pattern);
      [matched] = (await routeAll(x, [q], keys)) as [string[]];
    });
    return matched;
  }

  it('literal pattern matches only the same key', async () => {
    expect(await topicMatches('a.b')).toEqual(['a.b']);
  });

  it('* matches exactly one word', async () => {
    expect(await topicMatches('a.*')).toEqual(['a.b']);
    expect(await topicMatches('*')).toEqual(['a', 'b']);
    expect(await topicMatches('*.b')).toEqual(['a.b']);
    expect(await topicMatches('a.*.b')).toEqual(['a.x.b']);
  });

  it('# matches zero or more words', async () => {
    expect(await topicMatches('a.#')).toEqual(['a', 'a.b', 'a.b.c', 'a.x.b', 'a.x.y.b']);
    expect(await topicMatches('#.b')).toEqual(['a.b', 'a.x.b', 'a.x.y.b', 'b', 'x.a.b']);
  });

  it('a.#.b matches a.b, a.x.b and a.x.y.b', async () => {
    expect(await topicMatches('a.#.b')).toEqual(['a.b', 'a.x.b', 'a.x.y.b']);
  });

  it('# matches everything, including the empty routing key', async () => {
    expect(await topicMatches('#')).toEqual(['a', 'a.b', 'a.b.c', 'a.x.b', 'a.x.y.b', 'b', 'x.a.b', '<empty>']);
  });

  it('empty words are words: "a..b" matches a.*.b, not a.b', async () => {
    let r: string[] = [];
    await withExchange('topic', async (x) => {
      const q1 = await exclusiveQueue();
      const q2 = await exclusiveQueue();
      await ch.bindQueue(q1, x, 'a.*.b');
      await ch.bindQueue(q2, x, 'a.b');
      const [r1, r2] = await routeAll(x, [q1, q2], ['a..b']);
      r = [...r1!, '|', ...r2!];
    });
    expect(r).toEqual(['a..b', '|']);
  });

  it('a queue matched by several bindings receives one copy', async () => {
    await withExchange('topic', async (x) => {
      const q = await exclusiveQueue();
      await ch.bindQueue(q, x, 'a.*');
      await ch.bindQueue(q, x, '#');
      await ch.bindQueue(q, x, 'a.b');
      const [r] = await routeAll(x, [q], ['a.b']);
      expect(r).toEqual(['a.b']);
    });
  });

  it('amq.topic is pre-declared', async () => {
    const q = await exclusiveQueue();
    const key = `${q}.*`;
    await ch.bindQueue(q, 'amq.topic', key);
    const [r] = await routeAll('amq.topic', [q], [`${q}.x`, `${q}.x.y`]);
    expect(r).toEqual([`${q}.x`]);
    await ch.unbindQueue(q, 'amq.topic', key);
  });
});

describe('headers exchange', () => {
  /** Publishes one message per headers table (body = its label) and returns the labels routed to a queue bound with args. */
  async function headersMatches(
    exchange: string,
    bindArgs: Record<string, unknown>,
    messages: [label: string, headers: Record<string, unknown>][],
  ): Promise<string[]> {
    const q = await exclusiveQueue();
    await ch.bindQueue(q, exchange, '', bindArgs);
    for (const [label, headers] of messages) ch.publish(exchange, 'any-key', Buffer.from(label), { headers });
    const got = await drain(ch, q);
    await ch.deleteQueue(q);
    return got;
  }

  it('x-match=all needs every binding header', async () => {
    await withExchange('headers', async (x) => {
      const got = await headersMatches(x, { 'x-match': 'all', a: '1', b: 'two' }, [
        ['both', { a: '1', b: 'two' }],
        ['both+extra', { a: '1', b: 'two', c: 'x' }],
        ['only-a', { a: '1' }],
        ['wrong-b', { a: '1', b: 'three' }],
        ['none', {}],
      ]);
      expect(got).toEqual(['both', 'both+extra']);
    });
  });

  it('x-match defaults to all', async () => {
    await withExchange('headers', async (x) => {
      const got = await headersMatches(x, { a: 'v', b: 'w' }, [
        ['both', { a: 'v', b: 'w' }],
        ['only-a', { a: 'v' }],
      ]);
      expect(got).toEqual(['both']);
    });
  });

  it('x-match=any needs one binding header', async () => {
    await withExchange('headers', async (x) => {
      const got = await headersMatches(x, { 'x-match': 'any', a: '1', b: 'two' }, [
        ['both', { a: '1', b: 'two' }],
        ['only-a', { a: '1' }],
        ['only-b', { b: 'two' }],
        ['wrong', { a: '2', b: 'three' }],
        ['none', {}],
      ]);
      expect(got).toEqual(['both', 'only-a', 'only-b']);
    });
  });

  it('integer values match across integer widths but not strings (typed values)', async () => {
    await withExchange('headers', async (x) => {
      // amqplib encodes 1 as a signed byte in the binding
      const got = await headersMatches(x, { 'x-match': 'all', n: 1 }, [
        ['int8', { n: { '!': 'int8', value: 1 } }],
        ['int16', { n: { '!': 'int16', value: 1 } }],
        ['int32', { n: { '!': 'int32', value: 1 } }],
        ['int64', { n: { '!': 'int64', value: 1 } }],
        ['string', { n: '1' }],
        ['other-int', { n: 2 }],
        ['bool', { n: true }],
      ]);
      // RabbitMQ: values compare by type class (all integer types are one class) and value
      expect(got).toEqual(['int8', 'int16', 'int32', 'int64']);
    });
  });

  it('booleans and strings match by value', async () => {
    await withExchange('headers', async (x) => {
      const got = await headersMatches(x, { 'x-match': 'all', flag: true, s: 'ü' }, [
        ['yes', { flag: true, s: 'ü' }],
        ['false', { flag: false, s: 'ü' }],
        ['other-s', { flag: true, s: 'u' }],
      ]);
      expect(got).toEqual(['yes']);
    });
  });

  it('a void binding value matches any value of that header (presence test)', async () => {
    await withExchange('headers', async (x) => {
      const got = await headersMatches(x, { 'x-match': 'all', present: null }, [
        ['string', { present: 'x' }],
        ['number', { present: 42 }],
        ['void', { present: null }],
        ['absent', { other: 'x' }],
      ]);
      expect(got).toEqual(['string', 'number', 'void']);
    });
  });

  it('binding arguments starting with x- are ignored when matching', async () => {
    await withExchange('headers', async (x) => {
      const all = await headersMatches(x, { 'x-match': 'all', 'x-extra': 'must-not-be-required', a: '1' }, [
        ['a-only', { a: '1' }],
        ['a+x-extra', { a: '1', 'x-extra': 'must-not-be-required' }],
      ]);
      expect(all).toEqual(['a-only', 'a+x-extra']);
      // with only x- arguments there is nothing to match for any
      const anyOnlyX = await headersMatches(x, { 'x-match': 'any', 'x-extra': 'v' }, [
        ['x-extra', { 'x-extra': 'v' }],
        ['none', {}],
      ]);
      expect(anyOnlyX).toEqual([]);
    });
  });

  it('x-match=all with no other arguments matches every message', async () => {
    await withExchange('headers', async (x) => {
      const got = await headersMatches(x, { 'x-match': 'all' }, [
        ['empty', {}],
        ['some', { a: 1 }],
      ]);
      expect(got).toEqual(['empty', 'some']);
    });
  });

  it('the routing key is ignored', async () => {
    await withExchange('headers', async (x) => {
      const q = await exclusiveQueue();
      await ch.bindQueue(q, x, 'some-key', { a: 'b' });
      ch.publish(x, 'another-key', Buffer.from('m'), { headers: { a: 'b' } });
      expect(await drain(ch, q)).toEqual(['m']);
    });
  });

  it('amq.match and amq.headers are pre-declared headers exchanges', async () => {
    for (const x of ['amq.match', 'amq.headers']) {
      const marker = uniqueName('hdr');
      const got = await headersMatches(x, { 'x-match': 'all', marker }, [
        ['hit', { marker }],
        ['miss', { marker: 'other' }],
      ]);
      expect(got).toEqual(['hit']);
    }
  });
});

describe('default exchange', () => {
  it('routes by queue name', async () => {
    const q1 = await exclusiveQueue();
    const q2 = await exclusiveQueue();
    ch.publish('', q1, Buffer.from('one'));
    ch.sendToQueue(q2, Buffer.from('two'));
    expect(await drain(ch, q1)).toEqual(['one']);
    expect(await drain(ch, q2)).toEqual(['two']);
  });

  it('a routing key that is no queue name routes nowhere', async () => {
    const q = await exclusiveQueue();
    ch.publish('', uniqueName('no-such-queue'), Buffer.from('lost'));
    ch.publish('', q, Buffer.from('kept'));
    expect(await drain(ch, q)).toEqual(['kept']);
  });

  it('a client-named queue is reachable through "" under its name', async () => {
    // RabbitMQ: every queue is implicitly bound to "" under its own name
    const { queue } = await ch.assertQueue(uniqueName('named'), { exclusive: true });
    ch.publish('', queue, Buffer.from('x'));
    expect(await drain(ch, queue)).toEqual(['x']);
  });
});
