import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster } from './etcd-cluster.js';

describe('test etcd cluster', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await EtcdCluster.start(3);
  }, 30_000);
  afterAll(async () => etcd?.stop());

  it('has a raft leader among its three members', async () => {
    expect(['e1', 'e2', 'e3']).toContain(await etcd.raftLeader());
  });
});
