import type { EventEmitter } from 'node:events';

/** A campaigning node as its election key describes it. */
export interface CandidateInfo {
  readonly id: string;
  /** host:port where clients (and followers' proxies) reach its AMQP listener */
  readonly amqp: string;
  /** host:port of its cluster port (replication and proxied AMQP) */
  readonly cluster: string;
}

export interface LeaderInfo extends CandidateInfo {
  /** the election key's create revision: unique and increasing across the cluster's life */
  readonly term: number;
}

/** The in-sync replica set: only these nodes hold every committed record and may lead. */
export interface IsrRecord {
  readonly term: number;
  readonly leader: string;
  readonly members: readonly string[];
}

export type NodeRole = 'leader' | 'follower' | 'starting';

export interface NodeRecord {
  readonly id: string;
  readonly amqp: string;
  readonly cluster: string;
  readonly role: NodeRole;
}

/**
 * What clustering needs from its coordinator (etcd in production, a fake in unit tests).
 * Events: 'leader' (LeaderInfo | null) when the observed leader changes; 'isr' (IsrRecord | null);
 * 'expired' when this node's lease may be gone (it must stop leading at once; nothing is
 * confirmed past the lease deadline anyway, see leaseValid());
 * 'elected' (term) when this node's campaign won.
 */
export interface Coordinator extends EventEmitter {
  readonly nodeId: string;
  /** true while this node's lease certainly lives (monotonic clock, conservative) */
  leaseValid(): boolean;
  /** monotonic ms (performance.now()) until which the lease certainly lives */
  readonly leaseDeadline: number;
  /** the shared secret authenticating the cluster links */
  readonly secret: Buffer;
  currentLeader(): LeaderInfo | null;
  currentIsr(): IsrRecord | null;
  /** enters the election (idempotent); 'elected' follows when this node is the oldest candidate */
  campaign(): Promise<void>;
  /** leaves the election (deletes this node's candidate key) */
  resign(): Promise<void>;
  /** true while this node holds the leadership it won (term) and its lease is valid */
  isLeader(): boolean;
  readonly term: number;
  /** a linearizable read of the ISR */
  readIsr(): Promise<IsrRecord | null>;
  /**
   * writes the ISR only if this node still leads with its term (txn fenced on the lease); false
   * when fenced out; rejects (try again) while the lease deadline has passed but the lease may
   * still live (etcd electing a raft leader)
   */
  writeIsr(members: readonly string[]): Promise<boolean>;
  /** publishes this node's registry record (bound to its lease) */
  register(record: NodeRecord): Promise<void>;
  listNodes(): Promise<NodeRecord[]>;
  close(): Promise<void>;
}
