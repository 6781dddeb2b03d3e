import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { splice } from '../../src/cluster/proxy-splice.js';

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function listen(onSocket: (s: Socket) => void): Promise<number> {
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as { port: number }).port;
}

describe('splice (a follower forwarding a client to the leader)', () => {
  it('a leader that answers and ends: the client gets every byte and an orderly end, even while it is still sending', async () => {
    // the leader answers the first bytes it gets with "close-ok" and ends its side (as Warren does after connection.close)
    const leaderPort = await listen((s) => {
      s.once('data', () => s.end('close-ok'));
      s.resume();
    });
    let dropped = 0;
    const followerPort = await listen((client) => {
      const upstream = connect(leaderPort, '127.0.0.1');
      sockets.push(upstream);
      upstream.on('error', () => {});
      const drop = (): void => {
        dropped++;
        client.destroy();
        upstream.destroy();
      };
      upstream.on('error', drop);
      client.on('close', drop);
      splice(client, upstream, 2000, drop);
    });
    const c = connect(followerPort, '127.0.0.1');
    sockets.push(c);
    await new Promise<void>((r) => c.once('connect', () => r()));
    // the client does not read for a while and keeps sending (heartbeats, late publishes):
    // a follower that reset the connection now would make its kernel drop "close-ok" unread
    c.pause();
    let error: Error | null = null;
    let closed = false;
    c.on('error', (err) => (error = err));
    c.on('close', () => (closed = true));
    c.write('close');
    const chunk = Buffer.alloc(1024, 1);
    for (let i = 0; i < 40 && !closed; i++) {
      c.write(chunk);
      await new Promise((r) => setTimeout(r, 5));
    }
    const got: Buffer[] = [];
    const ended = new Promise<boolean>((resolve) => {
      if (closed) resolve(false);
      c.on('end', () => resolve(true));
      c.on('close', () => resolve(false));
    });
    c.on('data', (d: Buffer) => got.push(d));
    c.resume();
    expect(await ended).toBe(true);
    expect(error).toBeNull();
    expect(Buffer.concat(got).toString()).toBe('close-ok');
    c.end();
    await new Promise<void>((r) => (c.destroyed ? r() : c.once('close', () => r())));
    // the follower lets go once the client closed its side too
    for (const end = Date.now() + 5000; dropped === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    expect(dropped).toBeGreaterThan(0);
  });
});
