import type { Channel, ChannelModel } from 'amqplib';
import { expectChannelClose } from './closes.js';
import { connect, openChannel, uniqueName } from './connections.js';

/**
 * Owns one admin connection per test file and deletes every queue/exchange declared through
 * it (or registered with it) after each test, and closes every connection it handed out, so
 * tests run in parallel and repeatedly:
 *
 *   const scope = new Scope();
 *   beforeAll(() => scope.open());
 *   afterEach(() => scope.cleanup());
 *   afterAll(() => scope.close());
 *
 * The admin connection is private to the scope, and replaced if the broker closes it (a
 * connection error such as 503 on a declare through it), so one failing test does not take
 * the rest of the file down with it.
 */
export class Scope {
  private adminConn: ChannelModel | null = null;
  private adminCh: Channel | null = null;
  private queues: string[] = [];
  private exchanges: string[] = [];
  private connections: ChannelModel[] = [];

  async open(): Promise<void> {
    await this.admin();
  }

  /** The admin channel, reopened (with its connection, if need be) after the broker closed it. */
  async admin(): Promise<Channel> {
    if (this.adminConn === null) {
      const conn = await connect();
      conn.once('close', () => {
        if (this.adminConn === conn) {
          this.adminConn = null;
          this.adminCh = null;
        }
      });
      this.adminConn = conn;
    }
    if (this.adminCh === null) {
      const ch = await openChannel(this.adminConn);
      ch.once('close', () => {
        if (this.adminCh === ch) this.adminCh = null;
      });
      this.adminCh = ch;
    }
    return this.adminCh;
  }

  /**
   * The admin channel as a property: open at the start of every test (open() and cleanup()
   * make sure of it); within a test that may have made the broker close it, use admin().
   */
  get ch(): Channel {
    if (this.adminCh === null) throw new Error("the scope's admin channel is closed: use `await scope.admin()`");
    return this.adminCh;
  }

  /** A fresh connection closed after the test. */
  async connection(): Promise<ChannelModel> {
    const conn = await connect();
    this.connections.push(conn);
    return conn;
  }

  /** A channel on a fresh connection closed after the test. */
  async channel(): Promise<Channel> {
    return openChannel(await this.connection());
  }

  /** A named, non-durable queue (not exclusive, so other connections may use it), deleted after the test. */
  async queue(prefix: string, args: Record<string, unknown> = {}): Promise<string> {
    const name = uniqueName(prefix);
    await (await this.admin()).assertQueue(name, { durable: false, arguments: args });
    this.queues.push(name);
    return name;
  }

  /** Registers a queue declared elsewhere for deletion. */
  trackQueue(name: string): void {
    this.queues.push(name);
  }

  /** A named, non-durable exchange, deleted after the test. */
  async exchange(prefix: string, type: string, args: Record<string, unknown> = {}): Promise<string> {
    const name = uniqueName(prefix);
    await (await this.admin()).assertExchange(name, type, { durable: false, arguments: args });
    this.exchanges.push(name);
    return name;
  }

  /** Registers an exchange declared elsewhere for deletion. */
  trackExchange(name: string): void {
    this.exchanges.push(name);
  }

  /**
   * queue.declare of a fresh queue with `args` (and `options`) must be refused with the 406
   * RabbitMQ answers (a channel error naming queue.declare, 50/10); `text` gets the queue name.
   */
  async expectDeclareRefused(
    args: Record<string, unknown>,
    text: (q: string) => string | RegExp,
    options: { durable?: boolean; exclusive?: boolean; autoDelete?: boolean; code?: number } = {},
  ): Promise<void> {
    const ch = await this.channel();
    const q = uniqueName('bad-arg');
    const { code = 406, ...declare } = options;
    // should the broker accept it after all, delete it after the test
    this.trackQueue(q);
    await expectChannelClose(ch, { code, text: text(q), method: [50, 10] }, () => ch.assertQueue(q, { durable: false, ...declare, arguments: args }));
  }

  /** As expectDeclareRefused, for one bad argument: "invalid arg '<arg>' for queue '<q>' in vhost '/': <detail>". */
  expectInvalidArg(arg: string, value: unknown, detail: string): Promise<void> {
    return this.expectDeclareRefused({ [arg]: value }, (q) => `PRECONDITION_FAILED - invalid arg '${arg}' for queue '${q}' in vhost '/': ${detail}`);
  }

  async cleanup(): Promise<void> {
    while (this.connections.length > 0)
      await this.connections
        .pop()!
        .close()
        .catch(() => {});
    // deletes of things that do not exist are ok (RabbitMQ 3.10), so a test may delete its own
    const ch = await this.admin();
    while (this.queues.length > 0) await ch.deleteQueue(this.queues.pop()!);
    while (this.exchanges.length > 0) await ch.deleteExchange(this.exchanges.pop()!);
  }

  async close(): Promise<void> {
    const conn = this.adminConn;
    this.adminConn = null;
    this.adminCh = null;
    await conn?.close().catch(() => {});
  }
}
