import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway CA with a server certificate (localhost / 127.0.0.1) and client certificates, made with openssl. */
export interface TestPki {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** client certificate and key files by name */
  client(name: string): { cert: string; key: string };
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

export interface ClientSpec {
  readonly name: string;
  /** the subject, e.g. /CN=alice/O=Example */
  readonly subject: string;
  /** subjectAltName extension value, e.g. email:alice@example.com,DNS:alice.example */
  readonly san?: string;
  /** signed by a CA of its own (not trusted by the broker) */
  readonly untrusted?: boolean;
}

export function makeTestPki(clients: readonly ClientSpec[] = []): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'warren-tls-'));
  const ca = (prefix: string, cn: string): void =>
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${cn}`, '-keyout', `${prefix}.key`, '-out', `${prefix}.crt`], dir);
  ca('ca', 'Warren Test CA');
  const sign = (name: string, subject: string, ext: string, caPrefix: string): void => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${caPrefix}.crt`, '-CAkey', `${caPrefix}.key`, '-CAcreateserial', '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`], dir);
  };
  sign('server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n', 'ca');
  let untrustedCa = false;
  for (const c of clients) {
    if (c.untrusted === true && !untrustedCa) {
      ca('untrusted-ca', 'Untrusted CA');
      untrustedCa = true;
    }
    sign(c.name, c.subject, `extendedKeyUsage=clientAuth\n${c.san === undefined ? '' : `subjectAltName=${c.san}\n`}`, c.untrusted === true ? 'untrusted-ca' : 'ca');
  }
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    client: (name) => ({ cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
