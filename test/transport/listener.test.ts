import { connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, SHARED_READ_HEAD, SHARED_READ_SIZE, type ReadSink, type SharedReadInput } from '../../src/transport/listener.js';

/** A sink that keeps a copy of everything read, as a connection's reader keeps what it needs. */
class CopyingSink implements ReadSink {
  readonly received: Buffer[] = [];
  sharedBuffers = new Set<Buffer>();
  /** when set, the next read goes here (as a payload's rest would) */
  target: Buffer | null = null;
  filled: number[] = [];
  borrowedRead(buf: Buffer, length: number): void {
    this.sharedBuffers.add(buf);
    this.received.push(Buffer.from(buf.subarray(0, length)));
  }
  readTarget(): Buffer | null {
    return this.target;
  }
  filledRead(length: number): void {
    this.filled.push(length);
    this.received.push(Buffer.from(this.target!.subarray(0, length)));
    this.target = null;
  }
  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }
}

let server: Server | null = null;
afterEach(async () => {
  const s = server;
  server = null;
  if (s !== null) await new Promise<void>((resolve) => s.close(() => resolve()));
});

async function start(onSocket: (socket: Socket, input: SharedReadInput | null) => void): Promise<number> {
  server = await listen('127.0.0.1', 0, onSocket, { sharedReads: true });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function client(port: number): Promise<Socket> {
  const c = connect(port, '127.0.0.1');
  await once(c, 'connect');
  return c;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('listener: client sockets read into one shared buffer', () => {
  it("without sharedReads, sockets emit 'data' as usual (a cluster node's proxy splices them)", async () => {
    const s = await listen('127.0.0.1', 0, (socket, input) => {
      expect(input).toBe(null);
      socket.pipe(socket); // echo
    });
    try {
      const address = s.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      const c = await client(address.port);
      c.write('hello');
      const [echo] = (await once(c, 'data')) as [Buffer];
      expect(echo.toString()).toBe('hello');
      c.destroy();
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });

  it('hands every byte of interleaved clients to their own sinks, in order, through one buffer', async () => {
    const sinks: CopyingSink[] = [];
    const closed: Promise<unknown>[] = [];
    const port = await start((socket, input) => {
      expect(input).not.toBe(null); // this Node takes the re-wrap (else reads fall back to 'data' events)
      const sink = new CopyingSink();
      input!.sink = sink;
      sinks.push(sink);
      closed.push(once(socket, 'close'));
    });
    const a = await client(port);
    const b = await client(port);
    const dataA = pattern(3 * SHARED_READ_SIZE + 123, 1);
    const dataB = pattern(2 * SHARED_READ_SIZE + 45, 2);
    for (let off = 0; off < dataA.length; off += 100_000) {
      a.write(dataA.subarray(off, off + 100_000));
      b.write(dataB.subarray(off, off + 100_000));
    }
    a.end();
    b.end();
    await Promise.all([once(a, 'close'), once(b, 'close')]);
    await Promise.all(closed);
    expect(sinks).toHaveLength(2);
    const byLength = [...sinks].sort((x, y) => y.bytes.length - x.bytes.length);
    expect(byLength[0]!.bytes.equals(dataA)).toBe(true);
    expect(byLength[1]!.bytes.equals(dataB)).toBe(true);
    const buffers = new Set([...sinks[0]!.sharedBuffers, ...sinks[1]!.sharedBuffers]);
    expect(buffers.size).toBe(1);
    expect([...buffers][0]!.length).toBe(SHARED_READ_SIZE);
  });

  it("the read after one that offers a buffer of the sink's own goes straight into it", async () => {
    let sink: CopyingSink | null = null;
    const port = await start((_socket, input) => {
      const s = new CopyingSink();
      // as a reader does when a read ends inside a big payload: its rest is asked for next
      const shared = s.borrowedRead.bind(s);
      s.borrowedRead = (buf, length) => {
        shared(buf, length);
        if (s.filled.length === 0) s.target = Buffer.alloc(50_000);
      };
      sink = s;
      input!.sink = s;
    });
    const c = await client(port);
    const first = pattern(10, 3);
    c.write(first);
    await until(() => sink !== null && sink.bytes.length === 10);
    const second = pattern(50_000, 4);
    c.write(second);
    c.end();
    await once(c, 'close');
    await until(() => sink!.bytes.length === 50_010);
    expect(sink!.bytes.equals(Buffer.concat([first, second]))).toBe(true);
    expect(sink!.filled.length).toBeGreaterThan(0);
  });

  it('after a read into its own buffer, the next shared read is offered only the head of the buffer', async () => {
    const reads: { own: boolean; offered: number }[] = [];
    let sink: CopyingSink | null = null;
    const port = await start((_socket, input) => {
      const s = new CopyingSink();
      const shared = s.borrowedRead.bind(s);
      const filled = s.filledRead.bind(s);
      s.borrowedRead = (buf, length) => {
        reads.push({ own: false, offered: buf.length });
        shared(buf, length);
        // the first read asks for 20,000 octets of its own next
        if (s.filled.length === 0 && s.target === null) s.target = Buffer.alloc(20_000);
      };
      s.filledRead = (length) => {
        reads.push({ own: true, offered: 20_000 });
        filled(length);
      };
      sink = s;
      input!.sink = s;
    });
    const c = await client(port);
    const parts = [pattern(10, 5), pattern(20_000, 6), pattern(30_000, 7)];
    let total = 0;
    for (const part of parts) {
      c.write(part);
      total += part.length;
      await until(() => sink !== null && sink.bytes.length === total);
    }
    c.destroy();
    expect(sink!.bytes.equals(Buffer.concat(parts))).toBe(true);
    const own = reads.findIndex((r) => r.own);
    expect(own).toBe(1);
    const shared = reads.slice(own).filter((r) => !r.own);
    expect(shared.length).toBeGreaterThanOrEqual(2); // 30,000 octets do not fit the head
    expect(shared[0]!.offered).toBe(SHARED_READ_HEAD);
    expect(shared.slice(1).every((r) => r.offered === SHARED_READ_SIZE)).toBe(true);
  });

  it('closing the server completes once its clients are gone (connection count kept)', async () => {
    const sockets: Socket[] = [];
    const port = await start((socket, input) => {
      input!.sink = new CopyingSink();
      sockets.push(socket);
    });
    const c = await client(port);
    await until(() => sockets.length === 1);
    const s = server!;
    server = null;
    let done = false;
    const closing = new Promise<void>((resolve) => s.close(() => resolve())).then(() => {
      done = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false); // a client is still connected
    c.end();
    await closing;
    expect(done).toBe(true);
  });

  it('the remote address and port stay visible on the re-wrapped socket', async () => {
    let seen: { address?: string; port?: number } | null = null;
    const port = await start((socket, input) => {
      input!.sink = new CopyingSink();
      seen = { address: socket.remoteAddress, port: socket.remotePort };
    });
    const c = await client(port);
    await until(() => seen !== null);
    expect(seen!.address).toBe('127.0.0.1');
    expect(seen!.port).toBe(c.localPort);
    c.destroy();
  });
});

/** waits for a condition that socket events make true (polled each turn of the event loop) */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  expect(cond()).toBe(true);
}
