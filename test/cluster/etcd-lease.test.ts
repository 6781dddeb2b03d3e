import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EtcdLeaseClient } from '../../src/cluster/etcd-lease.js';

/** a stand-in for one etcd member's JSON gateway: answers keepalives, or holds them (a member waiting for a leader) */
async function member(hold: boolean): Promise<{ server: Server; url: string; calls: number }> {
  const m = { server: null as unknown as Server, url: '', calls: 0 };
  m.server = createServer((req: IncomingMessage, res: ServerResponse) => {
    m.calls++;
    req.resume();
    if (hold) return; // never answered: the client's timeout gives up
    res.end(JSON.stringify({ result: { ID: '7', TTL: '3' } }) + '\n');
  });
  await new Promise<void>((r) => m.server.listen(0, '127.0.0.1', r));
  m.url = `127.0.0.1:${(m.server.address() as AddressInfo).port}`;
  return m;
}

describe('EtcdLeaseClient', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it('a retry with skip goes to the next member while the first holds the call, and that member becomes the current one', async () => {
    const waiting = await member(true);
    const answering = await member(false);
    servers.push(waiting.server, answering.server);
    const client = new EtcdLeaseClient([waiting.url, answering.url]);
    const held = client.keepalive('7', 300);
    // the first call is still unanswered: a retry to the next member gets through
    expect(await client.keepalive('7', 2000, 1)).toBe(3);
    expect(waiting.calls).toBe(1);
    expect(answering.calls).toBe(1);
    // the member that answered is now the one calls go to
    expect(await client.keepalive('7', 2000)).toBe(3);
    expect(answering.calls).toBe(2);
    await expect(held).rejects.toThrow();
  });

  it('a call whose answer starts and then stalls, or breaks off, settles with an error', async () => {
    for (const end of [false, true]) {
      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"result":');
        if (end) setTimeout(() => res.socket?.destroy(), 50); // broken off mid-answer
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      servers.push(server);
      const client = new EtcdLeaseClient([`127.0.0.1:${(server.address() as AddressInfo).port}`]);
      // (a call that never settled would fail this test by its timeout)
      await expect(client.keepalive('7', 300)).rejects.toThrow();
    }
  });

  it('a failed call moves to the next member', async () => {
    const waiting = await member(true);
    const answering = await member(false);
    servers.push(waiting.server, answering.server);
    const client = new EtcdLeaseClient([waiting.url, answering.url]);
    await expect(client.keepalive('7', 100)).rejects.toThrow();
    expect(await client.keepalive('7', 2000)).toBe(3);
    expect(answering.calls).toBe(1);
  });
});
