import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCtl } from '../../src/cli/ctl.js';
import { eventually, startHttpBroker, type HttpBroker } from './helpers.js';

const json = (body: unknown): RequestInit => ({ body: JSON.stringify(body) });

describe('policies and operator policies', () => {
  let h: HttpBroker;
  let conn: ChannelModel;

  beforeAll(async () => {
    h = await startHttpBroker();
    conn = await connect(h.broker.url);
  });
  afterAll(async () => {
    await conn.close().catch(() => {});
    await h.close();
  });

  it('warren ctl sets a policy that dead-letters expired messages of an existing queue, at once', async () => {
    const ch = await conn.createChannel();
    await ch.assertExchange('dead', 'fanout', { durable: false });
    await ch.assertQueue('dead-letters', { durable: false });
    await ch.bindQueue('dead-letters', 'dead', '');
    await ch.assertQueue('jobs', { durable: false });
    const out: string[] = [];
    const code = await runCtl(
      ['--management-url', h.base, 'set_policy', 'expire-jobs', '^jobs$', '{"message-ttl":50,"dead-letter-exchange":"dead"}', '--apply-to', 'queues'],
      {},
      { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) } },
    );
    expect([code, out.join('')]).toEqual([0, '']);
    ch.sendToQueue('jobs', Buffer.from('late'));
    const dead = await eventually(async () => {
      const m = await ch.get('dead-letters', { noAck: true });
      expect(m).not.toBe(false);
      return m as Exclude<typeof m, false>;
    });
    expect(dead.content.toString()).toBe('late');
    expect((dead.properties.headers!['x-death'] as Array<{ reason: string; queue: string }>)[0]).toMatchObject({ reason: 'expired', queue: 'jobs' });
    const q = (await h.api('/queues/%2F/jobs')).body;
    expect(q).toMatchObject({ policy: 'expire-jobs', effective_policy_definition: { 'message-ttl': 50, 'dead-letter-exchange': 'dead' } });
    expect((await h.api('/policies/%2F/expire-jobs')).body).toEqual({
      vhost: '/', name: 'expire-jobs', pattern: '^jobs$', 'apply-to': 'queues', definition: { 'message-ttl': 50, 'dead-letter-exchange': 'dead' }, priority: 0,
    });
    // cleared: new messages no longer expire
    expect((await h.api('/policies/%2F/expire-jobs', { method: 'DELETE' })).status).toBe(204);
    expect((await h.api('/queues/%2F/jobs')).body.policy).toBeNull();
    await ch.close();
  });

  it('a policy key the queue type does not take is ignored for that queue (queue-mode on a quorum queue), the others apply', async () => {
    expect((await h.api('/policies/%2F/qq', { method: 'PUT', ...json({ pattern: '^qq-pol$', definition: { 'queue-mode': 'lazy', 'max-length': 1 }, 'apply-to': 'queues' }) })).status).toBe(201);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('qq-pol', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    ch.sendToQueue('qq-pol', Buffer.from('1'));
    ch.sendToQueue('qq-pol', Buffer.from('2'));
    await ch.waitForConfirms();
    expect((await ch.checkQueue('qq-pol')).messageCount).toBe(1);
    expect((await h.api('/policies/%2F/qq', { method: 'DELETE' })).status).toBe(204);
    await ch.deleteQueue('qq-pol');
    await ch.close();
  });

  it('delivery-limit applies to quorum queues (dead-lettered as delivery_limit) and is ignored for classic ones', async () => {
    expect((await h.api('/policies/%2F/dl', { method: 'PUT', ...json({ pattern: '^dl-', definition: { 'delivery-limit': 1, 'dead-letter-exchange': '', 'dead-letter-routing-key': 'dl-dead' }, 'apply-to': 'queues' }) })).status).toBe(201);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('dl-dead', { durable: true });
    await ch.assertQueue('dl-qq', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.assertQueue('dl-classic', { durable: true });
    expect((await h.api('/queues/%2F/dl-qq')).body).toMatchObject({ policy: 'dl', effective_policy_definition: { 'delivery-limit': 1 } });
    ch.sendToQueue('dl-qq', Buffer.from('q'));
    ch.sendToQueue('dl-classic', Buffer.from('c'));
    await ch.waitForConfirms();
    // returned twice: the second return passes the limit of 1, and the message is dead-lettered
    for (const q of ['dl-qq', 'dl-classic']) {
      for (let i = 0; i < 2; i++) {
        const m = await ch.get(q);
        expect(m).not.toBe(false);
        if (m !== false) ch.nack(m, false, true);
      }
    }
    await eventually(async () => expect((await ch.checkQueue('dl-dead')).messageCount).toBe(1));
    const dead = await ch.get('dl-dead', { noAck: true });
    expect(dead !== false && dead.content.toString()).toBe('q');
    expect(dead !== false && (dead.properties.headers?.['x-death'] as { reason: string }[])[0]?.reason).toBe('delivery_limit');
    expect((await ch.checkQueue('dl-qq')).messageCount).toBe(0);
    // the classic queue has no delivery limit: its message is still there
    expect((await ch.checkQueue('dl-classic')).messageCount).toBe(1);
    expect((await h.api('/policies/%2F/dl', { method: 'DELETE' })).status).toBe(204);
    for (const q of ['dl-qq', 'dl-classic', 'dl-dead']) await ch.deleteQueue(q);
    await ch.close();
  });

  it('applies the highest-priority policy at once, the smallest length limit of argument, policy and operator policy wins', async () => {
    const ch = await conn.createChannel();
    await ch.assertQueue('prec', { durable: false, arguments: { 'x-max-length': 5, 'x-dead-letter-exchange': 'mine' } });
    for (let i = 0; i < 5; i++) ch.sendToQueue('prec', Buffer.from(String(i)));
    await eventually(async () => expect((await h.api('/queues/%2F/prec')).body.messages).toBe(5));
    expect((await h.api('/policies/%2F/high', { method: 'PUT', ...json({ pattern: '^prec$', definition: { 'max-length': 3, 'dead-letter-exchange': 'theirs' }, priority: 5, 'apply-to': 'queues' }) })).status).toBe(201);
    expect((await h.api('/policies/%2F/high', { method: 'PUT', ...json({ pattern: '^prec$', definition: { 'max-length': 3, 'dead-letter-exchange': 'theirs' }, priority: 5, 'apply-to': 'queues' }) })).status).toBe(204);
    // a lower-priority policy that also matches does not apply
    expect((await h.api('/policies/%2F/low', { method: 'PUT', ...json({ pattern: '^prec', definition: { 'max-length': 1 }, priority: 0 }) })).status).toBe(201);
    // 'high' applies (priority), its max-length 3 is below the argument's 5: the head was trimmed at once
    const q = (await h.api('/queues/%2F/prec')).body;
    expect(q.policy).toBe('high');
    expect(q.messages).toBe(3);
    const first = await ch.get('prec', { noAck: true });
    expect(first !== false && first.content.toString()).toBe('2');
    // an operator policy caps it further
    expect((await h.api('/operator-policies/%2F/cap', { method: 'PUT', ...json({ pattern: '.*', definition: { 'max-length': 1 }, 'apply-to': 'queues' }) })).status).toBe(201);
    expect((await h.api('/queues/%2F/prec')).body).toMatchObject({ operator_policy: 'cap', messages: 1, effective_policy_definition: { 'max-length': 1 } });
    // an operator policy may not set what only users decide
    expect((await h.api('/operator-policies/%2F/bad', { method: 'PUT', ...json({ pattern: '.*', definition: { 'dead-letter-exchange': 'x' } }) })).status).toBe(400);
    for (const p of ['/policies/%2F/low', '/policies/%2F/high', '/operator-policies/%2F/cap']) expect((await h.api(p, { method: 'DELETE' })).status).toBe(204);
    await ch.close();
  });

  it('sets an alternate exchange on an existing exchange', async () => {
    const ch = await conn.createChannel();
    await ch.assertExchange('pol-x', 'direct', { durable: false });
    await ch.assertExchange('pol-ae', 'fanout', { durable: false });
    await ch.assertQueue('pol-unrouted', { durable: false });
    await ch.bindQueue('pol-unrouted', 'pol-ae', '');
    expect((await h.api('/policies/%2F/ae', { method: 'PUT', ...json({ pattern: '^pol-x$', definition: { 'alternate-exchange': 'pol-ae' }, 'apply-to': 'exchanges' }) })).status).toBe(201);
    ch.publish('pol-x', 'nowhere', Buffer.from('u'));
    await eventually(async () => expect((await h.api('/queues/%2F/pol-unrouted')).body.messages).toBe(1));
    expect((await h.api('/exchanges/%2F/pol-x')).body.policy).toBe('ae');
    await h.api('/policies/%2F/ae', { method: 'DELETE' });
    await ch.close();
  });

  it('refuses invalid policies with 400 and RabbitMQ-like reasons', async () => {
    const put = (body: unknown) => h.api('/policies/%2F/p', { method: 'PUT', ...json(body) });
    expect((await put({ pattern: '(', definition: { 'max-length': 1 } })).status).toBe(400);
    expect((await put({ pattern: '.*', definition: { 'max-length': -1 } })).status).toBe(400);
    expect((await put({ pattern: '.*', definition: { 'delivery-limit': 'x' } })).body.reason).toMatch(/not a valid delivery limit/);
    expect((await put({ pattern: '.*', definition: { 'ha-mode': 'all' } })).body.reason).toMatch(/not recognised policy settings/);
    expect((await put({ pattern: '.*', definition: {}, 'apply-to': 'queues' })).status).toBe(400);
    expect((await put({ pattern: '.*', definition: { 'max-length': 1 }, 'apply-to': 'nothing' })).status).toBe(400);
    expect((await h.api('/policies/nope/p', { method: 'PUT', ...json({ pattern: '.*', definition: { 'max-length': 1 } }) })).status).toBe(404);
  });
});

describe('policies persist, and travel with definitions', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'warren-policies-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('survive a restart and apply to the recovered queue', async () => {
    let h = await startHttpBroker({ dataDir, memoryHighWatermark: 0, diskFreeLimit: 0 });
    await h.api('/queues/%2F/kept', { method: 'PUT', ...json({ durable: true }) });
    await h.api('/policies/%2F/keep', { method: 'PUT', ...json({ pattern: '^kept$', definition: { 'max-length': 7 }, priority: 1, 'apply-to': 'queues' }) });
    await h.api('/operator-policies/%2F/op', { method: 'PUT', ...json({ pattern: '.*', definition: { 'message-ttl': 60000 } }) });
    const exported = (await h.api('/definitions')).body;
    expect(exported.policies).toEqual([{ vhost: '/', name: 'keep', pattern: '^kept$', 'apply-to': 'queues', definition: { 'max-length': 7 }, priority: 1 }]);
    expect(exported.parameters).toContainEqual({ value: { pattern: '.*', definition: { 'message-ttl': 60000 }, priority: 0, 'apply-to': 'all' }, vhost: '/', component: 'operator_policy', name: 'op' });
    await h.close();
    h = await startHttpBroker({ dataDir, memoryHighWatermark: 0, diskFreeLimit: 0 });
    try {
      expect((await h.api('/queues/%2F/kept')).body).toMatchObject({ policy: 'keep', operator_policy: 'op' });
      // an import of the export into a fresh broker brings them back
      const fresh = await startHttpBroker();
      try {
        expect((await fresh.api('/definitions', { method: 'POST', ...json(exported) })).status).toBe(204);
        expect((await fresh.api('/queues/%2F/kept')).body).toMatchObject({ policy: 'keep', operator_policy: 'op' });
      } finally {
        await fresh.close();
      }
    } finally {
      await h.close();
    }
  });
});
