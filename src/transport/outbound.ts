import type { Duplex } from 'node:stream';

function uncork(out: Outbound): void {
  out.corked = false;
  out.socket.uncork();
}

/**
 * Per-connection writer. The first write in a tick corks the socket and the
 * uncork is scheduled for the next tick, so everything a tick produces (many
 * deliveries, confirms) leaves in one writev. `writable` turns false when the
 * socket's buffer is over its high-water mark; the connection stops delivering
 * until 'drain'.
 */
export class Outbound {
  corked = false;
  writable = true;
  bytesWritten = 0;

  constructor(readonly socket: Duplex) {}

  write(buf: Buffer): void {
    if (this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(uncork, this);
    }
    this.bytesWritten += buf.length;
    if (!this.socket.write(buf)) this.writable = false;
  }
}
