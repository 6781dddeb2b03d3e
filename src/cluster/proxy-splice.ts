import type { Duplex } from 'node:stream';

/**
 * Joins a client's socket and the connection carrying it to the leader, both ways. When the
 * leader ends its side (after connection.close-ok, say), the client's side is ended the same
 * way and whatever the client still sends is read and dropped until it closes, for at most
 * `lingerMs`. Destroyed at once, a socket with client bytes still unread (a heartbeat, a
 * publish sent as the leader closed) is closed with a reset, and the client's kernel then
 * throws away what it had not read yet: the close-ok too, and a client waiting for it (amqplib's
 * close()) waits forever. An upstream error (the leader died) drops both at once. `drop`
 * destroys both sockets and may be called more than once.
 */
export function splice(client: Duplex, upstream: Duplex, lingerMs: number, drop: () => void): void {
  client.pipe(upstream);
  upstream.pipe(client); // ends the client's side once the upstream ends
  upstream.on('close', () => {
    if (client.destroyed) {
      drop();
      return;
    }
    client.end();
    client.unpipe(upstream);
    client.resume();
    setTimeout(drop, lingerMs).unref();
  });
}
