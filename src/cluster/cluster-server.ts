import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { acceptHandshake, Purpose, type LinkReads, type PurposeCode } from './link.js';

/** PEM material for the cluster link; both sides present a certificate signed by `ca`. */
export interface ClusterTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

export interface ClusterServerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: ClusterTls | null;
  readonly secret: () => Buffer;
  readonly self: () => { nodeId: string; term: number };
  /** an authenticated link; the receiver owns the socket from then on */
  readonly onLink: (purpose: PurposeCode, socket: Duplex, nodeId: string, rest: Buffer) => void;
  readonly logger: Logger;
}

/**
 * The cluster port: replication links and proxied AMQP connections from peers. Every link
 * starts with the shared-secret handshake (link.ts); a peer that fails it is dropped and
 * logged, nothing else happens.
 */
export class ClusterServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Duplex>();

  constructor(private readonly o: ClusterServerOptions) {}

  async listen(): Promise<number> {
    const onSocket = (socket: Socket | TLSSocket): void => this.accept(socket);
    const server = this.o.tls === null
      ? createServer({ noDelay: true }, onSocket)
      : createTlsServer({ cert: this.o.tls.cert, key: this.o.tls.key, ca: this.o.tls.ca, requestCert: true, rejectUnauthorized: true }, onSocket);
    server.on('tlsClientError', (err: Error) => this.o.logger.warn({ err: err.message }, 'cluster: TLS handshake refused'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.o.logger.error({ err }, 'cluster: listener error'));
    this.server = server;
    const addr = server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.o.port;
  }

  private accept(socket: Socket | TLSSocket): void {
    socket.setNoDelay(true);
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    acceptHandshake(socket, this.o.secret(), this.o.self).then(
      ({ nodeId, purpose, rest }) => {
        try {
          this.o.onLink(purpose, socket, nodeId, rest);
        } catch (err) {
          this.o.logger.error({ err, peer }, 'cluster: link handler threw');
          socket.destroy();
        }
      },
      (err: unknown) => {
        this.o.logger.warn({ peer, err: err instanceof Error ? err.message : String(err) }, 'cluster: link refused');
        socket.destroy();
      },
    );
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server !== null) await new Promise<void>((r) => server.close(() => r()));
  }
}

export function splitHostPort(hostPort: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(hostPort);
  if (m === null) throw new Error(`expected host:port, got ${hostPort}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/**
 * opens a cluster link to a peer (plain TCP or TLS with the cluster CA). With `reads`, a
 * plain TCP link reads straight into its FrameReader (net.Socket's `onread`: no 'data'
 * events, and `reads.attached` is set); a TLS link leaves it to the caller.
 */
export function dialCluster(tls: ClusterTls | null): (hostPort: string, reads?: LinkReads) => Duplex {
  return (hostPort, reads) => {
    const { host, port } = splitHostPort(hostPort);
    if (tls === null) {
      if (reads === undefined) return connect({ host, port, noDelay: true });
      const reader = reads.reader;
      const s: Socket = connect({
        host,
        port,
        noDelay: true,
        onread: {
          // called once at the start and again after every read
          buffer: () => reader.target(),
          callback: (n: number) => {
            try {
              reader.filled(n);
              return true;
            } catch (err) {
              s.destroy(err instanceof Error ? err : new Error(String(err)));
              return false;
            }
          },
        },
      });
      reads.attached = true;
      return s;
    }
    // peers are named by address, not by a DNS name in their certificate: trust is the CA
    return tlsConnect({ host, port, cert: tls.cert, key: tls.key, ca: tls.ca, checkServerIdentity: () => undefined });
  };
}

export { Purpose };
