import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientProxy, type ClientProxyOptions, type ProxyLeader } from '../../src/cluster/client-proxy.js';
import { acceptHandshake, connectHandshake, Purpose } from '../../src/cluster/link.js';
import { parseProxyV1 } from '../../src/cluster/proxy-protocol.js';

const SECRET = randomBytes(32);
const HEADER = Buffer.from('AMQP\x00\x00\x09\x01', 'latin1');
const logger = pino({ level: 'silent' });

const servers: Server[] = [];
const sockets: Socket[] = [];
const proxies: ClientProxy[] = [];
afterEach(async () => {
  for (const p of proxies.splice(0)) p.close();
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function listen(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as { port: number }).port };
}

/** what one forwarded connection brought to a fake leader */
interface Arrival {
  readonly socket: Socket;
  peer: { address: string | undefined; port: number | undefined } | null;
  bytes: Buffer;
  readonly closed: Promise<void>;
}

type Behaviour = 'answer' | 'close-after-header' | 'answer-then-close' | 'silent';

/**
 * A leader's cluster port: the link handshake, the PROXY header, then the client's bytes.
 * 'answer': answers the client's 8-byte header with "START" (as connection.start);
 * 'close-after-header': reads the header and closes without a word (a leader stepping down);
 * 'answer-then-close': answers, then closes (a leader dying mid-session); 'silent': never answers (paused).
 */
class FakeLeader {
  readonly arrivals: Arrival[] = [];
  private waiters: Array<() => void> = [];
  port = 0;

  constructor(
    readonly id: string,
    readonly term: number,
    private readonly behaviour: Behaviour,
  ) {}

  get info(): ProxyLeader {
    return { id: this.id, term: this.term, cluster: `127.0.0.1:${this.port}` };
  }

  async start(): Promise<this> {
    const { port } = await listen((s) => {
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      void acceptHandshake(s, SECRET, () => ({ nodeId: this.id, term: this.term })).then(({ rest }) => {
        const a: Arrival = { socket: s, peer: null, bytes: Buffer.alloc(0), closed };
        this.arrivals.push(a);
        let buf = rest;
        const onData = (chunk: Buffer): void => {
          buf = Buffer.concat([buf, chunk]);
          if (a.peer === null) {
            const parsed = parseProxyV1(buf);
            if (parsed === null) return;
            a.peer = parsed.peer;
            buf = buf.subarray(parsed.length);
          }
          const had = a.bytes.length;
          a.bytes = Buffer.concat([a.bytes, buf]);
          buf = Buffer.alloc(0);
          if (had < HEADER.length && a.bytes.length >= HEADER.length) {
            if (this.behaviour === 'answer') s.write('START');
            else if (this.behaviour === 'close-after-header') s.destroy();
            else if (this.behaviour === 'answer-then-close') s.end('START');
          }
          this.notify();
        };
        s.on('data', onData);
        if (rest.length > 0) onData(Buffer.alloc(0));
        this.notify();
      }, () => s.destroy());
    });
    this.port = port;
    return this;
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** resolves once `cond` holds (checked at every arrival and every byte received) */
  async until(cond: () => boolean): Promise<void> {
    while (!cond()) await new Promise<void>((r) => this.waiters.push(r));
  }
}

/** a port nothing listens on (a leader killed with -9) */
async function deadLeader(id: string, term: number): Promise<ProxyLeader> {
  const { server, port } = await listen(() => {});
  servers.splice(servers.indexOf(server), 1);
  await new Promise((r) => server.close(r));
  return { id, term, cluster: `127.0.0.1:${port}` };
}

interface Rig {
  readonly proxy: ClientProxy;
  /** the leader the proxy's node knows; change it with setLeader */
  setLeader(l: ProxyLeader | null): void;
  /** settles once a dial to this leader id has failed before the leader answered */
  failedTo(id: string): Promise<void>;
  dials: string[];
  local: { served: boolean; head: Buffer | null; client: Socket | null };
  /** a client connected through the proxy */
  client(): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void> }>;
}

async function rig(options: Partial<ClientProxyOptions> = {}): Promise<Rig> {
  let leader: ProxyLeader | null = null;
  const dials: string[] = [];
  const failures = new Map<string, Array<() => void>>();
  const failed = new Set<string>();
  const local = { served: false, head: null as Buffer | null, client: null as Socket | null };
  const proxy = new ClientProxy({
    selfId: 'self',
    leader: () => leader,
    dial: (l) => {
      dials.push(l.id);
      const [host, port] = l.cluster.split(':') as [string, string];
      const upstream = connect(Number(port), host);
      sockets.push(upstream);
      const ready = connectHandshake(upstream, SECRET, 'self', Purpose.Proxy).then((r) => r.rest);
      // a refusal is seen through the handshake's failure; a close after it, through the socket
      const mark = (): void => {
        failed.add(l.id);
        for (const w of failures.get(l.id)?.splice(0) ?? []) w();
      };
      ready.catch(mark);
      ready.then(() => upstream.once('close', mark), () => {});
      return { upstream, ready };
    },
    servesLocally: () => local.served,
    serveLocally: (client, head) => {
      local.head = head;
      local.client = client;
    },
    waitMs: 30_000,
    maxBuffered: 4096,
    maxPending: 64,
    retryMs: 10,
    lingerMs: 1000,
    logger,
    ...options,
  });
  proxies.push(proxy);
  const { port } = await listen((s) => proxy.accept(s));
  return {
    proxy,
    dials,
    local,
    setLeader(l) {
      leader = l;
      proxy.leaderChanged(l);
    },
    failedTo: (id) =>
      failed.has(id)
        ? Promise.resolve()
        : new Promise<void>((r) => {
            const list = failures.get(id) ?? [];
            list.push(r);
            failures.set(id, list);
          }),
    async client() {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      socket.on('error', () => {});
      let received = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        received = Buffer.concat([received, d]);
      });
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      await new Promise<void>((r) => socket.once('connect', () => r()));
      return { socket, received: () => received, closed };
    },
  };
}

async function until(cond: () => boolean): Promise<void> {
  // the sockets' events are the clock here; a bounded wait only turns a hang into a failure
  for (let i = 0; !cond(); i++) {
    if (i > 5000) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('a follower forwarding a client through a failover (client-proxy.ts)', () => {
  it('a leader that refuses the connection: the client waits for the next leader and reaches it with its header and its address', async () => {
    const r = await rig();
    const dead = await deadLeader('L1', 1);
    const next = await new FakeLeader('L2', 2, 'answer').start();
    r.setLeader(dead);
    const c = await r.client();
    c.socket.write(HEADER);
    await r.failedTo('L1');
    expect(c.socket.destroyed).toBe(false);
    r.setLeader(next.info);
    await next.until(() => next.arrivals[0]?.bytes.length === HEADER.length);
    const arrival = next.arrivals[0]!;
    expect(arrival.bytes.equals(HEADER)).toBe(true);
    expect(arrival.peer).toEqual({ address: c.socket.localAddress, port: c.socket.localPort });
    await until(() => c.received().toString() === 'START');
    // joined from now on: what the client sends goes straight through
    c.socket.write('more');
    await next.until(() => arrival.bytes.length === HEADER.length + 4);
    expect(arrival.bytes.subarray(HEADER.length).toString()).toBe('more');
    expect(r.proxy.splicedCount).toBe(1);
    expect(r.proxy.pendingCount).toBe(0);
  });

  it('a leader that took the header and closed without answering: the header is sent again to the next leader', async () => {
    const r = await rig();
    const stepping = await new FakeLeader('L1', 1, 'close-after-header').start();
    const next = await new FakeLeader('L2', 2, 'answer').start();
    r.setLeader(stepping.info);
    const c = await r.client();
    c.socket.write(HEADER);
    await stepping.until(() => stepping.arrivals[0]?.bytes.length === HEADER.length);
    await r.failedTo('L1');
    r.setLeader(next.info);
    await next.until(() => next.arrivals[0]?.bytes.length === HEADER.length);
    expect(next.arrivals[0]!.bytes.equals(HEADER)).toBe(true);
    await until(() => c.received().toString() === 'START');
    expect(c.socket.destroyed).toBe(false);
  });

  it('the same leader refusing at first (elected, not yet open) is tried again without a leader change', async () => {
    const r = await rig();
    // the leader's port is closed at first, then opens on that same port
    const dead = await deadLeader('L1', 1);
    r.setLeader(dead);
    const c = await r.client();
    c.socket.write(HEADER);
    await r.failedTo('L1');
    const port = Number(dead.cluster.split(':')[1]);
    const answered = new Promise<void>((resolve) => {
      const server = createServer((s) => {
        sockets.push(s);
        s.on('error', () => {});
        void acceptHandshake(s, SECRET, () => ({ nodeId: 'L1', term: 1 })).then(() => {
          s.once('data', () => {
            s.write('START');
            resolve();
          });
        });
      });
      servers.push(server);
      server.listen(port, '127.0.0.1');
    });
    await answered;
    await until(() => c.received().toString() === 'START');
    expect(r.dials.filter((d) => d === 'L1').length).toBeGreaterThan(1);
  });

  it('a leader that answered and then died: the client is closed, never sent to another leader', async () => {
    const r = await rig();
    const dying = await new FakeLeader('L1', 1, 'answer-then-close').start();
    const next = await new FakeLeader('L2', 2, 'answer').start();
    r.setLeader(dying.info);
    const c = await r.client();
    c.socket.write(HEADER);
    await c.closed;
    expect(c.received().toString()).toBe('START');
    r.setLeader(next.info);
    expect(r.dials).toEqual(['L1']);
    expect(next.arrivals).toEqual([]);
  });

  it('a joined connection closes when its leader\'s term ends', async () => {
    const r = await rig();
    const first = await new FakeLeader('L1', 1, 'answer').start();
    const next = await new FakeLeader('L2', 2, 'answer').start();
    r.setLeader(first.info);
    const c = await r.client();
    c.socket.write(HEADER);
    await until(() => c.received().toString() === 'START');
    r.setLeader(next.info);
    await c.closed;
    expect(next.arrivals).toEqual([]);
  });

  it('a leader that never answers (paused): a leader change moves the client to the next one and drops the old link', async () => {
    const r = await rig();
    const paused = await new FakeLeader('L1', 1, 'silent').start();
    const next = await new FakeLeader('L2', 2, 'answer').start();
    r.setLeader(paused.info);
    const c = await r.client();
    c.socket.write(HEADER);
    await paused.until(() => paused.arrivals[0]?.bytes.length === HEADER.length);
    r.setLeader(null); // its lease ran out
    await paused.arrivals[0]!.closed;
    r.setLeader(next.info);
    await until(() => c.received().toString() === 'START');
    expect(next.arrivals[0]!.bytes.equals(HEADER)).toBe(true);
  });

  it('this node leading meanwhile: the client is served here, with what it sent so far', async () => {
    const r = await rig();
    const c = await r.client(); // no leader known yet
    c.socket.write(HEADER);
    await until(() => r.proxy.pendingCount === 1);
    r.setLeader({ id: 'self', term: 3, cluster: '127.0.0.1:1' });
    expect(r.local.client).toBeNull();
    expect(r.dials).toEqual([]);
    await until(() => r.proxy.pendingBytes === HEADER.length);
    r.local.served = true; // its promotion began
    r.proxy.wake();
    expect(r.local.head?.equals(HEADER) ?? false).toBe(true);
    expect(r.local.client?.remotePort).toBe(c.socket.localPort);
    expect(r.proxy.pendingCount).toBe(0);
  });

  it('no leader answering in time: the client is closed', async () => {
    const r = await rig({ waitMs: 50 });
    const c = await r.client();
    c.socket.write(HEADER);
    await c.closed;
    expect(r.proxy.pendingCount).toBe(0);
  });

  it('bounds what it keeps: a client sending more than the limit before any answer is closed', async () => {
    const r = await rig({ maxBuffered: 16 });
    const next = await new FakeLeader('L2', 2, 'silent').start();
    const c = await r.client();
    c.socket.write(Buffer.alloc(10));
    await until(() => r.proxy.pendingCount === 1);
    c.socket.write(Buffer.alloc(10));
    await c.closed;
    r.setLeader(next.info);
    expect(r.dials).toEqual([]);
  });

  it('bounds the clients waiting for a leader', async () => {
    const r = await rig({ maxPending: 1 });
    const first = await r.client();
    await until(() => r.proxy.pendingCount === 1);
    const second = await r.client();
    await second.closed;
    expect(first.socket.destroyed).toBe(false);
  });
});
