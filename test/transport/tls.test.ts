import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/index.js';
import { makeTestPki, type TestPki } from '../helpers/tls-certs.js';

let pki: TestPki;
const opened: amqp.ChannelModel[] = [];
const brokers: RunningBroker[] = [];

beforeAll(() => {
  pki = makeTestPki([
    { name: 'alice', subject: '/O=Example/CN=alice', san: 'email:alice@example.com,DNS:alice.example' },
    { name: 'nobody', subject: '/CN=nobody' },
    { name: 'rogue', subject: '/CN=alice', untrusted: true },
  ]);
}, 60_000);

afterAll(async () => {
  for (const c of opened) await c.close().catch(() => {});
  for (const b of brokers) await b.close();
  pki?.cleanup();
});

async function tlsBroker(options: Parameters<typeof startBroker>[0] = {}): Promise<RunningBroker> {
  const b = await startBroker({ tlsPort: 0, tlsCert: pki.serverCert, tlsKey: pki.serverKey, tlsCa: pki.caCert, ...options });
  brokers.push(b);
  return b;
}

function tlsOptions(client?: string): Record<string, unknown> {
  const o: Record<string, unknown> = { ca: [readFileSync(pki.caCert)], servername: 'localhost' };
  if (client !== undefined) {
    o.cert = readFileSync(pki.client(client).cert);
    o.key = readFileSync(pki.client(client).key);
  }
  return o;
}

async function connectTls(url: string, options: Record<string, unknown>): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(url, options);
  c.on('error', () => {});
  opened.push(c);
  return c;
}

async function roundTrip(conn: amqp.ChannelModel): Promise<string> {
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  ch.sendToQueue(queue, Buffer.from('over tls'));
  await ch.checkQueue(queue);
  const m = await ch.get(queue, { noAck: true });
  return m === false ? '' : m.content.toString();
}

describe('amqps listener', () => {
  it('amqplib connects over TLS with a password (TLS 1.2+) and messages go round trip', async () => {
    const b = await tlsBroker();
    expect(b.tlsUrl).toMatch(/^amqps:\/\//);
    const conn = await connectTls(`amqps://guest:guest@localhost:${b.tlsPort}`, tlsOptions());
    expect(await roundTrip(conn)).toBe('over tls');
    // the plain listener still works beside it
    const plain = await connectTls(b.url, {});
    expect(await roundTrip(plain)).toBe('over tls');
  });

  it('refuses TLS below 1.2', async () => {
    const b = await tlsBroker();
    await expect(amqp.connect(`amqps://guest:guest@localhost:${b.tlsPort}`, { ...tlsOptions(), maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })).rejects.toThrow();
  });

  it('a plaintext AMQP client on the TLS port fails (the TLS layer drops it)', async () => {
    const b = await tlsBroker();
    await expect(amqp.connect(`amqp://guest:guest@127.0.0.1:${b.tlsPort}`)).rejects.toThrow();
  });

  it('a client that never starts the handshake is dropped after the handshake timeout', async () => {
    const b = await tlsBroker({ tlsHandshakeTimeout: 200 });
    const socket = netConnect(b.tlsPort!, '127.0.0.1');
    socket.on('error', () => {});
    // no bytes sent: the server's handshake timer closes the socket
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    expect(socket.destroyed).toBe(true);
  });

  it('--no-plain: only the TLS listener runs', async () => {
    const b = await tlsBroker({ plain: false });
    expect(b.url).toBe(b.tlsUrl);
    expect(b.port).toBe(b.tlsPort);
    const conn = await connectTls(`amqps://guest:guest@localhost:${b.tlsPort}`, tlsOptions());
    expect(await roundTrip(conn)).toBe('over tls');
  });

  it('a bad certificate or key refuses to start, naming the files', async () => {
    const bad = join(pki.dir, 'garbage.pem');
    writeFileSync(bad, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    await expect(startBroker({ tlsPort: 0, tlsCert: bad, tlsKey: pki.serverKey })).rejects.toThrow(/invalid TLS certificate\/key .*garbage\.pem/);
    // a key that does not match the certificate
    await expect(startBroker({ tlsPort: 0, tlsCert: pki.serverCert, tlsKey: pki.client('alice').key })).rejects.toThrow(/invalid TLS certificate\/key/);
    await expect(startBroker({ tlsPort: 0, tlsCert: join(pki.dir, 'missing.pem'), tlsKey: pki.serverKey })).rejects.toThrow(/cannot read the TLS certificate .*missing\.pem/);
  });
});

describe('client certificates and SASL EXTERNAL', () => {
  it('EXTERNAL logs in as the certificate CN (the user needs no password)', async () => {
    const b = await tlsBroker({ tlsVerifyPeer: true });
    await b.admin.addUser('alice', { tags: [] });
    await b.admin.setPermissions('alice', '/', { configure: '.*', write: '.*', read: '.*' });
    const conn = await connectTls(`amqps://localhost:${b.tlsPort}`, { ...tlsOptions('alice'), credentials: amqp.credentials.external() });
    expect(await roundTrip(conn)).toBe('over tls');
  });

  it('EXTERNAL with a certificate naming an unknown user is refused (403)', async () => {
    const b = await tlsBroker({ tlsVerifyPeer: true });
    await expect(connectTls(`amqps://localhost:${b.tlsPort}`, { ...tlsOptions('nobody'), credentials: amqp.credentials.external() })).rejects.toThrow(
      /ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL/,
    );
  });

  it('EXTERNAL is not offered without a verified client certificate', async () => {
    const b = await tlsBroker({ tlsVerifyPeer: true });
    await expect(connectTls(`amqps://localhost:${b.tlsPort}`, { ...tlsOptions(), credentials: amqp.credentials.external() })).rejects.toThrow(/EXTERNAL/);
  });

  it('the user name can come from a subject alternative name (email) or the distinguished name', async () => {
    const san = await tlsBroker({ tlsVerifyPeer: true, tlsCertLoginFrom: 'subject_alternative_name', tlsCertLoginSanType: 'email' });
    await san.admin.addUser('alice@example.com');
    await san.admin.setPermissions('alice@example.com', '/', { configure: '.*', write: '.*', read: '.*' });
    expect(await roundTrip(await connectTls(`amqps://localhost:${san.tlsPort}`, { ...tlsOptions('alice'), credentials: amqp.credentials.external() }))).toBe('over tls');

    const dn = await tlsBroker({ tlsVerifyPeer: true, tlsCertLoginFrom: 'distinguished_name' });
    await dn.admin.addUser('CN=alice,O=Example');
    await dn.admin.setPermissions('CN=alice,O=Example', '/', { configure: '.*', write: '.*', read: '.*' });
    expect(await roundTrip(await connectTls(`amqps://localhost:${dn.tlsPort}`, { ...tlsOptions('alice'), credentials: amqp.credentials.external() }))).toBe('over tls');
  });

  it('verify-peer refuses a certificate from another CA; fail-if-no-peer-cert refuses clients without one', async () => {
    const b = await tlsBroker({ tlsVerifyPeer: true });
    await expect(connectTls(`amqps://guest:guest@localhost:${b.tlsPort}`, tlsOptions('rogue'))).rejects.toThrow();
    // without a certificate, verify-peer alone lets a password login through
    expect(await roundTrip(await connectTls(`amqps://guest:guest@localhost:${b.tlsPort}`, tlsOptions()))).toBe('over tls');
    const strict = await tlsBroker({ tlsVerifyPeer: true, tlsFailIfNoPeerCert: true });
    await expect(connectTls(`amqps://guest:guest@localhost:${strict.tlsPort}`, tlsOptions())).rejects.toThrow();
    expect(await roundTrip(await connectTls(`amqps://guest:guest@localhost:${strict.tlsPort}`, tlsOptions('alice')))).toBe('over tls');
  });
});

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function runPython(script: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, ['-c', script], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

const PIKA_TLS = `
import os, ssl, pika
ctx = ssl.create_default_context(cafile=os.environ['CA'])
if os.environ.get('CERT'):
    ctx.load_cert_chain(os.environ['CERT'], os.environ['KEY'])
creds = pika.credentials.ExternalCredentials() if os.environ.get('EXTERNAL') else pika.PlainCredentials('guest', 'guest')
params = pika.ConnectionParameters(host='localhost', port=int(os.environ['PORT']), credentials=creds,
                                   ssl_options=pika.SSLOptions(ctx, 'localhost'))
conn = pika.BlockingConnection(params)
ch = conn.channel()
q = ch.queue_declare('', exclusive=True).method.queue
ch.basic_publish('', q, b'pika over tls')
method, props, body = ch.basic_get(q, auto_ack=True)
print(body.decode())
conn.close()
`;

describe('pika over TLS', () => {
  it('connects with a password and with EXTERNAL (client certificate)', async () => {
    const b = await tlsBroker({ tlsVerifyPeer: true });
    expect(await runPython(PIKA_TLS, { CA: pki.caCert, PORT: String(b.tlsPort) })).toBe('pika over tls');
    await b.admin.addUser('alice');
    await b.admin.setPermissions('alice', '/', { configure: '.*', write: '.*', read: '.*' });
    const alice = pki.client('alice');
    expect(await runPython(PIKA_TLS, { CA: pki.caCert, PORT: String(b.tlsPort), CERT: alice.cert, KEY: alice.key, EXTERNAL: '1' })).toBe('pika over tls');
  }, 30_000);
});
