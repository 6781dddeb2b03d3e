import type { Channel, ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessAdmin,
  connect,
  expectChannelClose,
  isWarren,
  openChannel,
  RawClient,
  UnexpectedMethodError,
  uniqueName,
  type AccessAdmin,
  type Close,
} from './support/index.js';

/**
 * Permissions as RabbitMQ enforces them: 403 ACCESS_REFUSED on the operation, 530
 * NOT_ALLOWED at connection.open. User `u` may configure ^c-, write ^w-, read ^r- in a vhost
 * of its own; the admin user sets up resources of every kind there.
 */
let admin: AccessAdmin;
const vhost = uniqueName('access-vhost');
const user = uniqueName('access-user');
const password = 'pw-' + uniqueName('s');
let adminConn: ChannelModel;
let adminCh: Channel;
const conns: ChannelModel[] = [];

const refused = (kind: string, name: string, u = user, v = vhost): string =>
  `ACCESS_REFUSED - access to ${kind} '${name}' in vhost '${v}' refused for user '${u}'`;

async function asUser(): Promise<Channel> {
  const conn = await connect(admin.url(user, password, vhost));
  conns.push(conn);
  return openChannel(conn);
}

/** Runs `act` as the user and expects the channel to close with 403 and `text`. */
async function expect403(act: (ch: Channel) => Promise<unknown>, text: string | RegExp): Promise<void> {
  const ch = await asUser();
  await expectChannelClose(ch, { code: 403, text }, () => act(ch));
}

async function openCloseOf(url: string): Promise<Close | null> {
  return RawClient.open(url).then(
    ({ client }) => {
      client.destroy();
      return null;
    },
    (e: unknown) => (e instanceof UnexpectedMethodError ? e.close : Promise.reject(e)),
  );
}

beforeAll(async () => {
  admin = await accessAdmin();
  await admin.addVhost(vhost);
  await admin.addUser(user, password);
  await admin.setPermissions(user, vhost, '^c-', '^w-', '^r-');
  adminConn = await connect(admin.url(admin.adminUser.name, admin.adminUser.password, vhost));
  adminCh = await openChannel(adminConn);
  for (const q of ['c-q', 'w-q', 'r-q', 'rw-q']) await adminCh.assertQueue(q, { durable: false });
  for (const x of ['c-x', 'w-x', 'r-x']) await adminCh.assertExchange(x, 'direct', { durable: false });
  await adminCh.assertExchange('r-topic', 'topic', { durable: false });
});

afterAll(async () => {
  for (const c of conns) await c.close().catch(() => {});
  await adminConn?.close().catch(() => {});
  await admin?.cleanup();
});

describe('configure: declare and delete', () => {
  it("queue.declare needs configure on the queue (403 with RabbitMQ's text); allowed names work", async () => {
    await expect403((ch) => ch.assertQueue('w-new', { durable: false }), refused('queue', 'w-new'));
    const ch = await asUser();
    expect((await ch.assertQueue('c-new', { durable: false, autoDelete: true })).queue).toBe('c-new');
  });

  it('a server-named queue is checked under its generated amq.gen- name', async () => {
    await expect403(
      (ch) => ch.assertQueue('', { exclusive: true }),
      new RegExp(`^ACCESS_REFUSED - access to queue 'amq\\.gen-[\\w-]{22}' in vhost '${vhost}' refused for user '${user}'$`),
    );
  });

  it('an exclusive queue needs configure too', async () => {
    await expect403((ch) => ch.assertQueue('r-excl', { exclusive: true }), refused('queue', 'r-excl'));
    const ch = await asUser();
    await ch.assertQueue('c-excl', { exclusive: true });
  });

  it('a passive declare needs no permission', async () => {
    const ch = await asUser();
    await ch.checkQueue('r-q');
    await ch.checkExchange('r-x');
  });

  it('exchange.declare needs configure on the exchange', async () => {
    await expect403((ch) => ch.assertExchange('w-new-x', 'fanout', { durable: false }), refused('exchange', 'w-new-x'));
    const ch = await asUser();
    await ch.assertExchange('c-new-x', 'fanout', { durable: false, autoDelete: true });
    await ch.deleteExchange('c-new-x');
  });

  it('a new exchange with an alternate exchange also needs read on itself and write on the AE', async () => {
    await expect403(
      (ch) => ch.assertExchange('c-ae-1', 'direct', { durable: false, arguments: { 'alternate-exchange': 'w-x' } }),
      refused('exchange', 'c-ae-1'),
    );
    await admin.setPermissions(user, vhost, '^c-', '^w-', '^(r-|c-ae-)');
    try {
      await expect403(
        (ch) => ch.assertExchange('c-ae-2', 'direct', { durable: false, arguments: { 'alternate-exchange': 'r-x' } }),
        refused('exchange', 'r-x'),
      );
      const ch = await asUser();
      await ch.assertExchange('c-ae-3', 'direct', { durable: false, arguments: { 'alternate-exchange': 'w-x' } });
      await ch.deleteExchange('c-ae-3');
    } finally {
      await admin.setPermissions(user, vhost, '^c-', '^w-', '^r-');
    }
  });

  it('a new queue with a dead-letter exchange also needs read on itself and write on the DLX', async () => {
    await expect403((ch) => ch.assertQueue('c-dl-1', { durable: false, arguments: { 'x-dead-letter-exchange': 'w-x' } }), refused('queue', 'c-dl-1'));
    await admin.setPermissions(user, vhost, '^c-', '^w-', '^(r-|c-dl-)');
    try {
      await expect403((ch) => ch.assertQueue('c-dl-2', { durable: false, arguments: { 'x-dead-letter-exchange': 'r-x' } }), refused('exchange', 'r-x'));
      const ch = await asUser();
      await ch.assertQueue('c-dl-3', { durable: false, arguments: { 'x-dead-letter-exchange': 'w-x' } });
      await ch.deleteQueue('c-dl-3');
    } finally {
      await admin.setPermissions(user, vhost, '^c-', '^w-', '^r-');
    }
  });

  it('queue.delete and exchange.delete need configure', async () => {
    await expect403((ch) => ch.deleteQueue('w-q'), refused('queue', 'w-q'));
    await expect403((ch) => ch.deleteExchange('w-x'), refused('exchange', 'w-x'));
    const ch = await asUser();
    await ch.deleteQueue('c-new');
  });
});

describe('bindings: write on the destination, read on the source', () => {
  it('queue.bind needs write on the queue and read on the exchange', async () => {
    const ch = await asUser();
    await ch.bindQueue('w-q', 'r-x', 'k');
    await ch.unbindQueue('w-q', 'r-x', 'k');
    await expect403((c) => c.bindQueue('r-q', 'r-x', 'k'), refused('queue', 'r-q'));
    await expect403((c) => c.bindQueue('w-q', 'w-x', 'k'), refused('exchange', 'w-x'));
    await expect403((c) => c.unbindQueue('r-q', 'r-x', 'k'), refused('queue', 'r-q'));
  });

  it('exchange.bind needs write on the destination and read on the source', async () => {
    const ch = await asUser();
    await ch.bindExchange('w-x', 'r-x', 'k');
    await ch.unbindExchange('w-x', 'r-x', 'k');
    await expect403((c) => c.bindExchange('r-x', 'r-topic', 'k'), refused('exchange', 'r-x'));
    await expect403((c) => c.bindExchange('w-x', 'c-x', 'k'), refused('exchange', 'c-x'));
  });
});

describe('publish, consume, get, purge', () => {
  it('publish needs write on the exchange; the default exchange is amq.default', async () => {
    const ch = await asUser();
    ch.publish('w-x', 'k', Buffer.from('ok'));
    await ch.checkExchange('w-x');
    const ch2 = await asUser();
    await expectChannelClose(ch2, { code: 403, text: refused('exchange', 'r-x') }, () => ch2.publish('r-x', 'k', Buffer.from('no')));
    const ch3 = await asUser();
    await expectChannelClose(ch3, { code: 403, text: refused('exchange', 'amq.default') }, () => ch3.sendToQueue('w-q', Buffer.from('no')));
  });

  it('a refused publish is refused again after a permitted one on the same channel (no stale permit)', async () => {
    const ch = await asUser();
    ch.publish('w-x', 'k', Buffer.from('1'));
    ch.publish('w-x', 'k', Buffer.from('2'));
    await ch.checkExchange('w-x');
    await expectChannelClose(ch, { code: 403, text: refused('exchange', 'c-x') }, () => ch.publish('c-x', 'k', Buffer.from('3')));
  });

  it('consume, get and purge need read on the queue', async () => {
    const ch = await asUser();
    await ch.consume('r-q', () => {});
    expect(await ch.get('r-q')).toBe(false);
    await ch.purgeQueue('r-q');
    await expect403((c) => c.consume('w-q', () => {}), refused('queue', 'w-q'));
    await expect403((c) => c.get('w-q'), refused('queue', 'w-q'));
    await expect403((c) => c.purgeQueue('w-q'), refused('queue', 'w-q'));
  });

  it('direct reply-to: consuming amq.rabbitmq.reply-to needs no permission; the reply needs write on amq.default', async () => {
    const ch = await asUser();
    await ch.consume('amq.rabbitmq.reply-to', () => {}, { noAck: true });
    ch.publish('w-x', 'k', Buffer.from('request'), { replyTo: 'amq.rabbitmq.reply-to' });
    await ch.checkExchange('w-x');
    await expectChannelClose(ch, { code: 403, text: refused('exchange', 'amq.default') }, () =>
      ch.publish('', 'amq.rabbitmq.reply-to.abc', Buffer.from('reply')),
    );
  });
});

describe('connection.open (530 NOT_ALLOWED)', () => {
  it('a user without permissions on the vhost is refused', async () => {
    const other = uniqueName('access-noperm');
    await admin.addUser(other, 'pw');
    expect(await openCloseOf(admin.url(other, 'pw', vhost))).toEqual({
      code: 530,
      text: `NOT_ALLOWED - access to vhost '${vhost}' refused for user '${other}'`,
      method: [10, 40],
    });
  });

  it('max-connections: the connection over the limit is refused', async () => {
    const v = uniqueName('access-limited');
    await admin.addVhost(v);
    await admin.setPermissions(user, v, '.*', '.*', '.*');
    await admin.setVhostLimit(v, 'max-connections', 1);
    const first = await connect(admin.url(user, password, v));
    conns.push(first);
    expect(await openCloseOf(admin.url(user, password, v))).toEqual({
      code: 530,
      text: `NOT_ALLOWED - access to vhost '${v}' refused for user '${user}': connection limit (1) is reached`,
      method: [10, 40],
    });
  });
});

describe('vhost limits', () => {
  it('max-queues: a new queue over the limit is refused with 406, redeclaring an existing one is not', async () => {
    const v = uniqueName('access-maxq');
    await admin.addVhost(v);
    await admin.setPermissions(user, v, '.*', '.*', '.*');
    await admin.setVhostLimit(v, 'max-queues', 1);
    const conn = await connect(admin.url(user, password, v));
    conns.push(conn);
    const ch = await openChannel(conn);
    await ch.assertQueue('one', { durable: false });
    await ch.assertQueue('one', { durable: false });
    await expectChannelClose(ch, { code: 406, text: `PRECONDITION_FAILED - cannot declare queue 'two': queue limit in vhost '${v}' (1) is reached` }, () =>
      ch.assertQueue('two', { durable: false }),
    );
  });
});

describe('topic permissions', () => {
  it('publish to a topic exchange checks the routing key against the write pattern ({username} expanded)', async () => {
    await admin.setTopicPermissions(user, vhost, 'r-topic', '^{username}\\.', '^ok\\.');
    // write on the exchange itself is needed first: give it through a second permission set
    await admin.setPermissions(user, vhost, '^c-', '^(w-|r-topic$)', '^r-');
    const ch = await asUser();
    ch.publish('r-topic', `${user}.x`, Buffer.from('ok'));
    await ch.checkExchange('r-topic');
    await expectChannelClose(
      ch,
      { code: 403, text: `ACCESS_REFUSED - access to topic 'other.x' in exchange 'r-topic' in vhost '${vhost}' refused for user '${user}'` },
      () => ch.publish('r-topic', 'other.x', Buffer.from('no')),
    );
  });

  it('queue.bind to a topic exchange checks the binding key against the read pattern', async () => {
    const ch = await asUser();
    await ch.bindQueue('w-q', 'r-topic', 'ok.#');
    await expect403(
      (c) => c.bindQueue('w-q', 'r-topic', 'bad.#'),
      `ACCESS_REFUSED - access to topic 'bad.#' in exchange 'r-topic' in vhost '${vhost}' refused for user '${user}'`,
    );
  });
});

describe('deleting a vhost or a user closes its connections (320)', () => {
  it('vhost deleted', async () => {
    const v = uniqueName('access-gone');
    await admin.addVhost(v);
    await admin.setPermissions(user, v, '.*', '.*', '.*');
    const conn = await connect(admin.url(user, password, v));
    const closed = new Promise<Error>((resolve) => conn.on('close', (e: Error) => resolve(e)));
    await admin.deleteVhost(v);
    // RabbitMQ 3.10 says "is down" instead when the vhost's processes stop before the connection is told
    const reason = isWarren() ? 'is deleted' : 'is (deleted|down)';
    expect((await closed).message).toMatch(new RegExp(`320 \\(CONNECTION-FORCED\\) with message "CONNECTION_FORCED - vhost '${v}' ${reason}"`));
  });

  it('user deleted', async () => {
    const u = uniqueName('access-leaving');
    await admin.addUser(u, 'pw');
    await admin.setPermissions(u, vhost, '.*', '.*', '.*');
    const conn = await connect(admin.url(u, 'pw', vhost));
    const closed = new Promise<Error>((resolve) => conn.on('close', (e: Error) => resolve(e)));
    await admin.deleteUser(u);
    expect((await closed).message).toContain(`320 (CONNECTION-FORCED) with message "CONNECTION_FORCED - user '${u}' is deleted"`);
  });
});

describe('connection.update-secret', () => {
  it('the current password is accepted (update-secret-ok) and the connection goes on', async () => {
    const conn = await connect(admin.url(user, password, vhost));
    conns.push(conn);
    await (conn as unknown as { updateSecret(s: Buffer, r: string): Promise<void> }).updateSecret(Buffer.from(password), 'refresh');
    const ch = await openChannel(conn);
    await ch.checkQueue('r-q');
  });

  it.runIf(isWarren())('Warren: a secret that is not the password closes the connection with 530', async () => {
    const conn = await connect(admin.url(user, password, vhost));
    const closed = new Promise<Error>((resolve) => conn.on('close', (e: Error) => resolve(e)));
    // amqplib waits for update-secret-ok, which never comes: the close is the answer
    void (conn as unknown as { updateSecret(s: Buffer, r: string): Promise<void> }).updateSecret(Buffer.from('wrong'), 'refresh').catch(() => {});
    expect((await closed).message).toContain('530 (NOT-ALLOWED) with message "NOT_ALLOWED - New secret was refused by one of the backends"');
  });
});
