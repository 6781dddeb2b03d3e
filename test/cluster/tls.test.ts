import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LevelApplyTarget } from '../../src/cluster/apply-target.js';
import { ClusterServer, dialCluster, type ClusterTls } from '../../src/cluster/cluster-server.js';
import { Purpose } from '../../src/cluster/link.js';
import { OpLog } from '../../src/cluster/op-log.js';
import { ReplicationFollower } from '../../src/cluster/replication-follower.js';
import { ReplicationLeader } from '../../src/cluster/replication-leader.js';

const logger = pino({ level: 'silent' });

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** a CA and a certificate it signed, made with the system's openssl */
async function pki(dir: string, name: string, caName: string): Promise<ClusterTls> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, 'req', '-x509', ...ec, '-keyout', `${caName}.key`, '-out', `${caName}.pem`, '-days', '1', '-subj', `/CN=${caName}`);
  openssl(dir, 'req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1');
  return { cert: await readFile(join(dir, `${name}.pem`)), key: await readFile(join(dir, `${name}.key`)), ca: await readFile(join(dir, `${caName}.pem`)) };
}

describe('cluster link over TLS', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'warren-tls-'));
  });
  afterAll(async () => rm(root, { recursive: true, force: true }));

  it('replicates between nodes holding certificates of the cluster CA, and refuses a peer without one', async () => {
    const tls = await pki(root, 'node', 'ca');
    const stranger = await pki(root, 'stranger', 'other-ca');
    const secret = randomBytes(32);
    const open = async (id: string) => {
      const db = new Level<Buffer, Buffer>(join(root, id, 'store'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open();
      const log = new OpLog(join(root, id, 'log'));
      await log.open();
      return { db, log, target: new LevelApplyTarget(db) };
    };
    const a = await open('a');
    const b = await open('b');
    const writes: string[][] = [];
    const leader = new ReplicationLeader({
      log: a.log, target: a.target, nodeId: 'a', term: 3, minInsync: 1, followerAckTimeoutMs: 2000, retainRecords: 100, logger,
      gate: { canCommit: () => true, writeIsr: async (m) => (writes.push([...m].sort()), true) },
    });
    const server = new ClusterServer({
      host: '127.0.0.1', port: 0, tls, secret: () => secret, self: () => ({ nodeId: 'a', term: 3 }), logger,
      onLink: (purpose, socket, nodeId, rest) => (purpose === Purpose.Replicate ? leader.attach(socket, nodeId, rest) : socket.destroy()),
    });
    const port = await server.listen();
    const follower = new ReplicationFollower({ log: b.log, target: b.target, nodeId: 'b', secret: () => secret, dial: dialCluster(tls), logger });
    try {
      const started = leader.start(['a', 'b']);
      follower.follow({ id: 'a', cluster: `127.0.0.1:${port}`, term: 3 });
      await started;
      await leader.append([{ type: 'put', key: Buffer.from('k'), value: Buffer.from('over tls') }]);
      const end = Date.now() + 10_000;
      while (follower.status().appliedSeq < leader.status().commitSeq && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      expect((await b.db.get(Buffer.from('k')))?.toString()).toBe('over tls');
      expect(writes[writes.length - 1]).toEqual(['a', 'b']);

      // a certificate from another CA never gets to the handshake
      const refused = await new Promise<boolean>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port, ...stranger, checkServerIdentity: () => undefined });
        s.on('secureConnect', () => s.once('data', () => resolve(false)));
        s.on('error', () => resolve(true));
        s.on('close', () => resolve(true));
      });
      expect(refused).toBe(true);
    } finally {
      await follower.stop();
      leader.stop();
      await server.close();
      await a.log.close();
      await b.log.close();
      await a.db.close();
      await b.db.close();
    }
  });
});
