import { readFileSync } from 'node:fs';
import type { X509Certificate } from 'node:crypto';
import { createSecureContext, createServer, type Server, type TLSSocket } from 'node:tls';

export interface TlsListenerOptions {
  /** PEM file paths */
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string | null;
  /** RabbitMQ's verify_peer: ask for a client certificate and refuse one that does not verify */
  readonly verifyPeer: boolean;
  /** RabbitMQ's fail_if_no_peer_cert: with verifyPeer, a client without a certificate is refused */
  readonly failIfNoPeerCert: boolean;
  /** the TLS handshake must finish within this many ms (RabbitMQ's ssl_handshake_timeout: 5 s) */
  readonly handshakeTimeout: number;
}

/** A TLS listener that cannot start: the message names the file and what is wrong with it. */
export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
}

function readPem(what: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsConfigError(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Loads and checks the certificate, key and CA, so that a bad one stops the broker at startup with a clear message. */
export function loadTlsMaterial(o: TlsListenerOptions): { cert: Buffer; key: Buffer; ca: Buffer | undefined } {
  const cert = readPem('certificate', o.certFile);
  const key = readPem('key', o.keyFile);
  const ca = o.caFile === null ? undefined : readPem('CA certificate', o.caFile);
  try {
    createSecureContext({ cert, key, ca, minVersion: 'TLSv1.2' });
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new TlsConfigError(`invalid TLS certificate/key (${o.certFile}, ${o.keyFile}${o.caFile === null ? '' : `, CA ${o.caFile}`}): ${e.message}`, { cause: err });
  }
  return { cert, key, ca };
}

/**
 * The amqps listener (TLS 1.2 or higher). `onSocket` gets each socket once its handshake is
 * done, with the peer's verified certificate (null when it presented none). A client that
 * does not complete the handshake in time (a plaintext client, a silent one) is dropped by
 * the TLS layer; `onClientError` hears about it.
 */
export function listenTls(
  host: string,
  port: number,
  options: TlsListenerOptions,
  onSocket: (socket: TLSSocket, peerCertificate: X509Certificate | null) => void,
  onClientError: (err: Error, remoteAddress: string | undefined) => void,
): Promise<Server> {
  const { cert, key, ca } = loadTlsMaterial(options);
  const server = createServer(
    {
      cert,
      key,
      ca,
      minVersion: 'TLSv1.2',
      requestCert: options.verifyPeer,
      rejectUnauthorized: options.verifyPeer && options.failIfNoPeerCert,
      handshakeTimeout: options.handshakeTimeout,
    },
    (socket) => {
      socket.setNoDelay(true);
      let peer: X509Certificate | null = null;
      if (options.verifyPeer) {
        const presented = socket.getPeerX509Certificate();
        if (presented !== undefined) {
          // verify_peer without fail_if_no_peer_cert: no certificate is fine, a bad one is not
          if (!socket.authorized) {
            onClientError(new Error(`client certificate refused: ${String(socket.authorizationError)}`), socket.remoteAddress);
            socket.destroy();
            return;
          }
          peer = presented;
        }
      }
      onSocket(socket, peer);
    },
  );
  server.on('tlsClientError', (err, socket) => {
    onClientError(err, socket.remoteAddress);
    socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
