import type { Channel } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Scope, consumeInto, expectChannelClose, openChannel, settle, uniqueName, type Inbox } from './support/index.js';

// Single active consumer with consumer priorities, RabbitMQ 3.10's rule: the first consumer stays
// active until it goes, whatever the priority of later ones; then a classic queue activates the
// waiting consumer with the highest priority (the earliest among equals), a quorum queue the
// earliest registered one (rabbit_queue_consumers:get_consumer/1, rabbit_fifo:activate_next_consumer/2).

const scope = new Scope();
beforeAll(() => scope.open());
afterEach(() => scope.cleanup());
afterAll(() => scope.close());

const SAC = { 'x-single-active-consumer': true };

interface Member {
  name: string;
  ch: Channel;
  inbox: Inbox;
}

/** Consumers registered one after the other, each on its own channel, no-ack, with the given priorities. */
async function register(q: string, priorities: [string, number][]): Promise<Member[]> {
  const conn = await scope.connection();
  const members: Member[] = [];
  for (const [name, priority] of priorities) {
    const ch = await openChannel(conn);
    const inbox = await consumeInto(ch, q, { noAck: true, priority });
    members.push({ name, ch, inbox });
  }
  return members;
}

/**
 * Publishes `n` messages and asserts they all go to `expected` and nobody else gets any: the
 * others' channels are settled (round trips) after the expected consumer has them all.
 */
async function expectAllTo(q: string, members: Member[], expected: string, n: number): Promise<void> {
  const publisher = members[0]!.ch;
  const active = members.find((m) => m.name === expected)!;
  const before = new Map(members.map((m) => [m.name, m.inbox.received.length]));
  for (let i = 0; i < n; i++) publisher.sendToQueue(q, Buffer.from(`${expected}-${i}`));
  await active.inbox.untilCount(before.get(expected)! + n);
  for (const m of members) await settle(m.ch, q);
  const got = Object.fromEntries(members.map((m) => [m.name, m.inbox.received.length - before.get(m.name)!]));
  expect(got).toEqual(Object.fromEntries(members.map((m) => [m.name, m.name === expected ? n : 0])));
}

async function cancel(m: Member): Promise<void> {
  await m.ch.cancel(m.inbox.consumerTag);
}

async function quorumQueue(): Promise<string> {
  const name = uniqueName('sac-qq');
  scope.trackQueue(name);
  await (await scope.admin()).assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum', ...SAC } });
  return name;
}

describe('single active consumer with consumer priorities (classic queue)', () => {
  it('a later consumer with a higher x-priority does not take over: the first stays active', async () => {
    const q = await scope.queue('sac', SAC);
    const members = await register(q, [
      ['first', 0],
      ['higher', 10],
    ]);
    await expectAllTo(q, members, 'first', 5);
    await cancel(members[0]!);
    await expectAllTo(q, members, 'higher', 3);
  });

  it('when the active consumer goes, the waiting consumer with the highest priority takes over', async () => {
    const q = await scope.queue('sac', SAC);
    const members = await register(q, [
      ['first', 0],
      ['p5', 5],
      ['p10', 10],
      ['p10-later', 10],
    ]);
    await expectAllTo(q, members, 'first', 2);
    await cancel(members[0]!);
    await expectAllTo(q, members, 'p10', 2);
    await cancel(members[2]!);
    await expectAllTo(q, members, 'p10-later', 2);
    await cancel(members[3]!);
    await expectAllTo(q, members, 'p5', 2);
  });

  it('among equal priorities the earliest registered takes over; a closed channel hands over as a cancel does', async () => {
    const q = await scope.queue('sac', SAC);
    const members = await register(q, [
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
    await expectAllTo(q, members, 'a', 2);
    await members[0]!.ch.close();
    const rest = members.slice(1);
    await expectAllTo(q, rest, 'b', 2);
  });

  it('an exclusive consumer on a single-active-consumer queue → 403 in exclusive use', async () => {
    const q = await scope.queue('sac', SAC);
    const ch = await scope.channel();
    await expectChannelClose(ch, { code: 403, text: `ACCESS_REFUSED - queue '${q}' in vhost '/' in exclusive use`, method: [60, 20] }, () =>
      ch.consume(q, () => {}, { exclusive: true }),
    );
  });
});

describe('single active consumer (quorum queue)', () => {
  it('the first consumer stays active; then the earliest registered waiting consumer takes over, priorities aside', async () => {
    const q = await quorumQueue();
    const members = await register(q, [
      ['first', 0],
      ['p5', 5],
      ['p10', 10],
    ]);
    await expectAllTo(q, members, 'first', 2);
    await cancel(members[0]!);
    await expectAllTo(q, members, 'p5', 2);
  });
});
