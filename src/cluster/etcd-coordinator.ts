import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { circuitBreaker, ConsecutiveBreaker, handleWhen, retry } from 'cockatiel';
import { Etcd3, isRecoverableError, type Watcher } from 'etcd3';
import type { Logger } from 'pino';
import type { CandidateInfo, Coordinator, IsrRecord, LeaderInfo, NodeRecord } from './coordinator.js';
import { EtcdLeaseClient } from './etcd-lease.js';
import { etcdUrl } from './etcd-url.js';

export interface EtcdCoordinatorOptions {
  readonly endpoints: readonly string[];
  /** key prefix: /warren/<clusterName>/ */
  readonly clusterName: string;
  readonly nodeId: string;
  readonly candidate: CandidateInfo;
  /** lease TTL in seconds (etcd grants at least 2 s with its default election timeout) */
  readonly leaseTtl: number;
  /** independent keepalive round trips every this many ms */
  readonly keepaliveMs: number;
  /** the local deadline stops this much before the earliest possible expiry in etcd */
  readonly marginMs: number;
  readonly logger: Logger;
}

export const DEFAULT_LEASE_TTL = 3;
export const DEFAULT_KEEPALIVE_MS = 200;
export const DEFAULT_MARGIN_MS = 100;
/** a full re-read of the election prefix and the ISR, in case a watch event was missed */
const RESYNC_MS = 2000;
const UNARY_DEADLINE_MS = 1500;
/**
 * While the newest keepalive is unanswered this long, another goes out, to the next etcd
 * member. When the etcd raft leader dies, a member waiting for the next leader holds a
 * keepalive (etcd 3.4 polls for a leader once per election timeout) past its timeout: only
 * one sent after the new leader is known gets through, and with keepalives 400 ms apart
 * that cost up to 400 ms of the deadline's slack (bench/etcd-member-loss.mjs).
 */
const KEEPALIVE_RETRY_MS = 100;
/** a keepalive unanswered this long is given up (its endpoint is then skipped) */
const KEEPALIVE_TIMEOUT_MS = 800;
const KEEPALIVES_IN_FLIGHT_MAX = 8;
/**
 * Keepalives unanswered this long (since the newest answered one was sent): every etcd member
 * is asked for its status, repeatedly, to tell an etcd leader election (members answer, none
 * renews a lease until a new raft leader is known) from this node being cut off from etcd.
 */
const PROBE_AFTER_MS = 600;
const PROBE_EVERY_MS = 250;
const PROBE_TIMEOUT_MS = 300;
/** a majority answered a status probe sent at most this long ago: etcd is reachable */
const REACHABLE_FRESH_MS = 700;

const mono = (): number => performance.now();

export function etcdClient(endpoints: readonly string[]): Etcd3 {
  return new Etcd3({
    hosts: endpoints.map(etcdUrl),
    dialTimeout: 1000,
    // unary calls get a deadline; streams (watch, keepalive) must not
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + UNARY_DEADLINE_MS }),
    // etcd3's default per-host breaker opens for 5 s after 3 failures: during an etcd leader
    // election every host fails and the client would refuse all calls (keepalives too) for 5 s,
    // turning the loss of one etcd member into a Warren failover (scale-out.md 6.5)
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 500, breaker: new ConsecutiveBreaker(3) }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: 2 }),
    },
  });
}

interface Candidate {
  readonly key: string;
  readonly createRevision: number;
  readonly info: CandidateInfo;
}

function parseJson<T>(buf: Buffer | null | undefined): T | null {
  if (buf === null || buf === undefined || buf.length === 0) return null;
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch {
    return null;
  }
}

/**
 * Coordination on etcd (v3 API through the `etcd3` client).
 *
 * Lease: one per node, TTL `leaseTtl`. The node keeps its own deadline on the monotonic
 * clock: every `keepaliveMs` a keepalive round trip is sent (every KEEPALIVE_RETRY_MS, to
 * the next member each time, while the newest is unanswered); when etcd answers, the lease
 * certainly lives until send time + TTL (etcd restarts the TTL when it receives the
 * keepalive, which is later), minus `marginMs` for clock-rate drift. The library's own
 * "lost" event comes seconds after a rival may have been elected; Warren never uses it.
 *
 * Past the deadline nothing may be confirmed (leaseValid() is false), but the lease is given
 * up ('expired') only once it may really be gone: at once when etcd says so (a keepalive
 * answered with TTL 0), or when no majority of etcd members answers (this node is cut off
 * from etcd, or etcd lost its quorum), or when the lease was not renewed within a TTL after
 * the deadline. While a majority of members answers but none renews the lease, etcd is
 * electing a raft leader (no lease can be renewed, nor expire, meanwhile: a new etcd leader
 * gives every lease a fresh TTL): the node keeps its leadership and resumes confirming as soon
 * as a keepalive is answered. That answer proves the lease, and so the election key bound to
 * it, lived throughout: no rival can have been elected nor written the ISR meanwhile. Losing
 * the etcd raft leader (an election of 1-2.6 s with etcd's default 1 s election timeout,
 * longer under load) would otherwise cost a leader with a 3 s TTL its leadership.
 *
 * Election: etcd's recipe. Each candidate puts `election/<lease hex>` (create-if-absent,
 * bound to its lease); the candidate with the smallest create revision leads, and that
 * revision is its term (unique, increasing). Every node watches the prefix, so every
 * node knows the leader.
 *
 * Fencing: the ISR key is written only in a txn comparing the leader's election key's
 * lease and create revision; a leader whose lease expired in etcd is refused by etcd itself.
 */
export class EtcdCoordinator extends EventEmitter implements Coordinator {
  readonly nodeId: string;
  private readonly client: Etcd3;
  private readonly leases: EtcdLeaseClient;
  private readonly prefix: string;
  /** the lease id (decimal) while this node holds one */
  private lease: string | null = null;
  private leaseId = '';
  private deadline = 0;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private checkTimer: NodeJS.Timeout | null = null;
  private resyncTimer: NodeJS.Timeout | null = null;
  private keepalivesInFlight = 0;
  /** send time of the newest keepalive, and of the newest one answered */
  private keepaliveSentAt = 0;
  private keepaliveAnsweredSentAt = 0;
  private keepaliveRetries = 0;
  private expiredEmitted = false;
  /** monotonic ms at which the deadline passed while etcd stayed reachable (confirms paused), or null */
  private pausedSince: number | null = null;
  /** send time of the newest status probe a majority of etcd members answered */
  private reachableAt = 0;
  private probedAt = 0;
  private probing = false;
  private secret_: Buffer = Buffer.alloc(0);
  private campaignKey: string | null = null;
  /** the campaign in flight: a second call joins it instead of racing it */
  private campaigning: Promise<void> | null = null;
  /** bumped by every resign and lease replacement: a campaign that straddles one is void */
  private candidacyGeneration = 0;
  private term_ = 0;
  private elected = false;
  private readonly candidates = new Map<string, Candidate>();
  private leader: LeaderInfo | null = null;
  private leaderKey: string | null = null;
  private isr: IsrRecord | null = null;
  private electionWatcher: Watcher | null = null;
  private isrWatcher: Watcher | null = null;
  private closed = false;
  private lastRecord: NodeRecord | null = null;
  /** highest revision seen through the watches: an older full read must not overwrite it */
  private seenRevision = 0;
  private verifying = false;

  constructor(private readonly options: EtcdCoordinatorOptions) {
    super();
    this.nodeId = options.nodeId;
    this.client = etcdClient(options.endpoints);
    this.leases = new EtcdLeaseClient(options.endpoints);
    this.prefix = `/warren/${options.clusterName}/`;
  }

  get leaseDeadline(): number {
    return this.deadline;
  }

  get secret(): Buffer {
    return this.secret_;
  }

  get term(): number {
    return this.term_;
  }

  leaseValid(): boolean {
    return this.lease !== null && mono() < this.deadline;
  }

  isLeader(): boolean {
    return this.elected && this.leaseValid();
  }

  currentLeader(): LeaderInfo | null {
    return this.leader;
  }

  currentIsr(): IsrRecord | null {
    return this.isr;
  }

  /** grants the lease, reads (or creates) the shared secret, starts watching; throws when etcd is unreachable */
  async start(): Promise<void> {
    await this.grantLease();
    this.secret_ = await this.readOrCreateSecret();
    await this.startWatches();
    this.checkTimer = setInterval(() => this.checkDeadline(), 50);
    this.checkTimer.unref();
    this.resyncTimer = setInterval(() => void this.resync().catch(() => {}), RESYNC_MS);
    this.resyncTimer.unref();
  }

  private async grantLease(): Promise<void> {
    let lastError: unknown = null;
    // every endpoint once (a failed call moves the lease client to the next one)
    for (let i = 0; i < this.options.endpoints.length; i++) {
      const sentAt = mono();
      try {
        const { id, ttl } = await this.leases.grant(this.options.leaseTtl, UNARY_DEADLINE_MS);
        this.lease = id;
        this.leaseId = id;
        this.deadline = sentAt + ttl * 1000 - this.options.marginMs;
        this.keepaliveSentAt = sentAt;
        this.keepaliveAnsweredSentAt = sentAt;
        this.keepaliveRetries = 0;
        lastError = null;
        break;
      } catch (err) {
        lastError = err;
      }
    }
    if (lastError !== null) throw lastError;
    this.expiredEmitted = false;
    this.pausedSince = null;
    this.keepalivesInFlight = 0;
    if (this.keepaliveTimer === null) {
      this.keepaliveTimer = setInterval(() => this.keepalive(), Math.min(KEEPALIVE_RETRY_MS, this.options.keepaliveMs));
      this.keepaliveTimer.unref();
    }
    this.options.logger.debug({ lease: this.leaseId }, 'cluster: lease granted');
  }

  private keepalive(): void {
    const lease = this.lease;
    if (lease === null || this.closed || this.keepalivesInFlight >= KEEPALIVES_IN_FLIGHT_MAX) return;
    const sentAt = mono();
    const unanswered = this.keepaliveSentAt > this.keepaliveAnsweredSentAt;
    if (sentAt - this.keepaliveSentAt < (unanswered ? KEEPALIVE_RETRY_MS : this.options.keepaliveMs)) return;
    // a retry goes to the next member each time (the one holding the unanswered call may have no leader yet)
    const skip = unanswered ? ++this.keepaliveRetries : 0;
    this.keepaliveSentAt = sentAt;
    this.keepalivesInFlight++;
    this.leases.keepalive(lease, KEEPALIVE_TIMEOUT_MS, skip).then(
      (ttl) => {
        if (lease !== this.lease) return;
        this.keepalivesInFlight--;
        if (ttl <= 0) {
          // expired (or revoked) in etcd: a rival may lead already
          if (!this.closed && !this.expiredEmitted) this.expire('lease gone in etcd');
          return;
        }
        this.keepaliveAnsweredSentAt = Math.max(this.keepaliveAnsweredSentAt, sentAt);
        this.keepaliveRetries = 0;
        // never extend past what this round trip proves, and never move the deadline back
        this.deadline = Math.max(this.deadline, sentAt + ttl * 1000 - this.options.marginMs);
        const now = mono();
        if (this.pausedSince !== null && now < this.deadline) {
          this.options.logger.warn(
            { lease: this.leaseId, term: this.term_, leader: this.elected, pausedMs: Math.round(now - this.pausedSince) },
            'cluster: lease renewed after its deadline passed; confirms resume',
          );
          this.pausedSince = null;
        }
      },
      () => {
        if (lease === this.lease) this.keepalivesInFlight--;
      },
    );
  }

  private checkDeadline(): void {
    if (this.lease === null || this.closed || this.expiredEmitted) return;
    const now = mono();
    if (now - this.keepaliveAnsweredSentAt > PROBE_AFTER_MS) this.probe(now);
    if (now < this.deadline) return;
    const reachable = now - this.reachableAt <= REACHABLE_FRESH_MS;
    if (!reachable) return this.expire('lease deadline passed');
    if (this.pausedSince === null) {
      this.pausedSince = now;
      this.options.logger.warn(
        { lease: this.leaseId, term: this.term_, leader: this.elected },
        'cluster: lease deadline passed while etcd members answer (an etcd leader election?): confirms paused until the lease is renewed',
      );
      return;
    }
    if (now - this.deadline > this.options.leaseTtl * 1000) this.expire('lease deadline passed');
  }

  /** the lease may be gone: nothing more is confirmed, leadership is given up, a new lease is sought */
  private expire(reason: string): void {
    this.expiredEmitted = true;
    const pausedMs = this.pausedSince === null ? null : Math.round(mono() - this.pausedSince);
    this.pausedSince = null;
    const wasLeader = this.elected;
    this.elected = false;
    this.options.logger.warn({ lease: this.leaseId, wasLeader, term: this.term_, pausedMs }, `cluster: ${reason}`);
    this.emit('expired');
    void this.replaceLease();
  }

  /** asks every etcd member for its status; a majority answering marks etcd reachable */
  private probe(now: number): void {
    if (this.probing || now - this.probedAt < PROBE_EVERY_MS) return;
    this.probing = true;
    this.probedAt = now;
    this.leases
      .reachable(PROBE_TIMEOUT_MS)
      .then(
        (n) => {
          if (2 * n > this.leases.size) this.reachableAt = Math.max(this.reachableAt, now);
        },
        () => {},
      )
      .finally(() => (this.probing = false));
  }

  /** after an expiry: drop the old lease (and the candidacy bound to it) and start afresh */
  private async replaceLease(): Promise<void> {
    const old = this.lease;
    const hadCampaign = this.campaignKey !== null;
    this.candidacyGeneration++;
    this.lease = null;
    this.campaignKey = null;
    this.term_ = 0;
    if (old !== null) void this.leases.revoke(old, UNARY_DEADLINE_MS).catch(() => {});
    for (let delay = 200; !this.closed; delay = Math.min(delay * 2, 2000)) {
      try {
        await this.grantLease();
        if (this.lastRecord !== null) await this.register(this.lastRecord);
        this.emit('lease-renewed', hadCampaign);
        return;
      } catch (err) {
        this.options.logger.warn({ err }, 'cluster: cannot get a new lease; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async readOrCreateSecret(): Promise<Buffer> {
    const key = `${this.prefix}secret`;
    const fresh = randomBytes(32).toString('base64');
    const res = await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(fresh)).else(this.client.get(key)).commit();
    if (res.succeeded) return Buffer.from(fresh, 'base64');
    const kv = res.responses[0]?.response_range?.kvs[0];
    if (kv === undefined) throw new Error('cluster secret missing in etcd');
    return Buffer.from(kv.value.toString('utf8'), 'base64');
  }

  private async startWatches(): Promise<void> {
    const rev = await this.resync();
    this.electionWatcher = await this.client
      .watch()
      .prefix(`${this.prefix}election/`)
      .startRevision(String(rev + 1))
      .create();
    this.electionWatcher.on('put', (kv) => {
      this.seenRevision = Math.max(this.seenRevision, Number(kv.mod_revision));
      const info = parseJson<CandidateInfo>(kv.value);
      if (info !== null) this.candidates.set(kv.key.toString(), { key: kv.key.toString(), createRevision: Number(kv.create_revision), info });
      this.updateLeader();
    });
    this.electionWatcher.on('delete', (kv) => {
      this.seenRevision = Math.max(this.seenRevision, Number(kv.mod_revision));
      this.candidates.delete(kv.key.toString());
      this.updateLeader();
    });
    this.electionWatcher.on('error', () => {});
    this.isrWatcher = await this.client.watch().key(`${this.prefix}isr`).startRevision(String(rev + 1)).create();
    this.isrWatcher.on('put', (kv) => {
      this.seenRevision = Math.max(this.seenRevision, Number(kv.mod_revision));
      this.setIsr(parseJson<IsrRecord>(kv.value));
    });
    this.isrWatcher.on('delete', () => this.setIsr(null));
    this.isrWatcher.on('error', () => {});
  }

  /** reads the election prefix and the ISR; returns the revision read at */
  private async resync(): Promise<number> {
    const res = await this.client
      .if(`${this.prefix}isr`, 'Create', '>', -1)
      .then(this.client.getAll().prefix(`${this.prefix}election/`), this.client.get(`${this.prefix}isr`))
      .commit();
    const rev = Number(res.header.revision);
    // watch events newer than this read were applied meanwhile: this read is stale
    if (rev < this.seenRevision) return rev;
    this.seenRevision = rev;
    const candidates = res.responses[0]?.response_range?.kvs ?? [];
    this.candidates.clear();
    if (this.campaignKey !== null && this.term_ > rev) {
      // our own key was created after this read
      this.candidates.set(this.campaignKey, { key: this.campaignKey, createRevision: this.term_, info: this.options.candidate });
    } else if (this.campaignKey !== null && !this.elected && !candidates.some((kv) => kv.key.toString() === this.campaignKey)) {
      // our candidacy is gone from etcd though we never resigned it: stand again (the
      // periodic candidacy check does) rather than believe in a key no one else sees
      this.options.logger.warn({ key: this.campaignKey, term: this.term_, readAt: rev }, 'cluster: this node\'s candidacy is gone from etcd; standing again');
      this.candidacyGeneration++;
      this.campaignKey = null;
      this.term_ = 0;
    }
    for (const kv of candidates) {
      const info = parseJson<CandidateInfo>(kv.value);
      if (info !== null) this.candidates.set(kv.key.toString(), { key: kv.key.toString(), createRevision: Number(kv.create_revision), info });
    }
    this.updateLeader();
    const isrKv = res.responses[1]?.response_range?.kvs[0];
    this.setIsr(isrKv === undefined ? null : parseJson<IsrRecord>(isrKv.value));
    return rev;
  }

  private setIsr(isr: IsrRecord | null): void {
    const same = JSON.stringify(isr) === JSON.stringify(this.isr);
    this.isr = isr;
    if (!same) this.emit('isr', isr);
  }

  private updateLeader(): void {
    let first: Candidate | null = null;
    for (const c of this.candidates.values()) if (first === null || c.createRevision < first.createRevision) first = c;
    const key = first?.key ?? null;
    if (key !== this.leaderKey) {
      this.leaderKey = key;
      this.leader = first === null ? null : { ...first.info, term: first.createRevision };
      this.emit('leader', this.leader);
    }
    if (!this.elected && key !== null && key === this.campaignKey && this.leaseValid()) void this.verifyElection();
  }

  /**
   * Our key looks oldest in our (watch-fed, possibly lagging) view: confirm with a
   * linearizable read that no key with a smaller create revision exists (etcd's recipe).
   * Revisions only grow, so no older key can appear later.
   */
  private async verifyElection(): Promise<void> {
    if (this.verifying) return;
    this.verifying = true;
    try {
      const key = this.campaignKey;
      const term = this.term_;
      if (key === null) return;
      const older = await this.client.getAll().prefix(`${this.prefix}election/`).maxCreateRevision(term - 1).limit(1).keys();
      if (older.length > 0) {
        // our view missed a candidate: read again, and look again shortly
        void this.resync().catch(() => {});
        setTimeout(() => this.updateLeader(), 100).unref();
        return;
      }
      if (this.closed || this.elected || this.campaignKey !== key || this.term_ !== term || !this.leaseValid()) return;
      this.elected = true;
      this.options.logger.info({ term }, 'cluster: elected');
      this.emit('elected', term);
    } catch (err) {
      this.options.logger.warn({ err }, 'cluster: cannot verify the election; retrying');
      setTimeout(() => this.updateLeader(), 200).unref();
    } finally {
      this.verifying = false;
    }
  }

  /**
   * Puts this node's candidacy (a key bound to its lease) unless it has one. Calls made while
   * one is in flight join it. A resign or a lease replacement while the txn is in flight voids
   * it: the key it created is deleted again, never adopted (adopting it after a resign's
   * delete left a candidacy that existed only here: campaign() then returned at once forever
   * and the node never stood again, a leaderless cluster in the fault runs).
   */
  campaign(): Promise<void> {
    if (this.campaignKey !== null || this.lease === null) return Promise.resolve();
    if (this.campaigning !== null) return this.campaigning;
    const p = this.campaignOnce().finally(() => {
      if (this.campaigning === p) this.campaigning = null;
    });
    this.campaigning = p;
    return p;
  }

  private async campaignOnce(): Promise<void> {
    const generation = this.candidacyGeneration;
    const leaseId = this.leaseId;
    const key = `${this.prefix}election/${BigInt(leaseId).toString(16)}`;
    const value = JSON.stringify(this.options.candidate);
    const res = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(value).lease(leaseId))
      .else(this.client.get(key))
      .commit();
    if (generation !== this.candidacyGeneration || this.closed) {
      // resigned (or the lease was replaced) meanwhile: this candidacy must not exist
      await this.client.delete().key(key).exec().catch(() => {});
      return;
    }
    const rev = res.succeeded ? Number(res.header.revision) : Number(res.responses[0]?.response_range?.kvs[0]?.create_revision ?? 0);
    if (rev === 0) return; // the key vanished between the txn's branches: try again on the next check
    this.campaignKey = key;
    this.term_ = rev;
    this.candidates.set(key, { key, createRevision: rev, info: this.options.candidate });
    this.updateLeader();
  }

  async resign(): Promise<void> {
    this.candidacyGeneration++;
    const key = this.campaignKey;
    this.campaignKey = null;
    this.elected = false;
    this.term_ = 0;
    if (key !== null) {
      this.candidates.delete(key);
      await this.client.delete().key(key).exec().catch(() => {});
      this.updateLeader();
    }
  }

  /** a linearizable read of the ISR (the watch may lag); used when deciding to lead */
  async readIsr(): Promise<IsrRecord | null> {
    const isr = parseJson<IsrRecord>(await this.client.get(`${this.prefix}isr`).buffer());
    this.setIsr(isr);
    return isr;
  }

  async writeIsr(members: readonly string[]): Promise<boolean> {
    const key = this.campaignKey;
    if (key === null || !this.elected) return false;
    // past the deadline, while etcd elects a raft leader: still the leader, not yet allowed to act
    if (!this.leaseValid()) throw new Error('lease deadline passed and the lease not renewed yet');
    const record: IsrRecord = { term: this.term_, leader: this.nodeId, members: [...members].sort() };
    const res = await this.client
      .if(key, 'Lease', '==', this.leaseId)
      .and(key, 'Create', '==', this.term_)
      .then(this.client.put(`${this.prefix}isr`).value(JSON.stringify(record)))
      .commit();
    if (res.succeeded) this.setIsr(record);
    return res.succeeded;
  }

  async register(record: NodeRecord): Promise<void> {
    this.lastRecord = record;
    if (this.lease === null) return;
    await this.client.put(`${this.prefix}nodes/${this.nodeId}`).value(JSON.stringify(record)).lease(this.leaseId).exec();
  }

  async listNodes(): Promise<NodeRecord[]> {
    const kvs = await this.client.getAll().prefix(`${this.prefix}nodes/`).buffers();
    const out: NodeRecord[] = [];
    for (const value of Object.values(kvs)) {
      const r = parseJson<NodeRecord>(value);
      if (r !== null) out.push(r);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of [this.keepaliveTimer, this.checkTimer, this.resyncTimer]) if (t !== null) clearInterval(t);
    await Promise.all([this.electionWatcher?.cancel().catch(() => {}), this.isrWatcher?.cancel().catch(() => {})]);
    // a clean stop hands leadership over at once instead of after the TTL
    if (this.lease !== null) await this.leases.revoke(this.lease, 1000).catch(() => {});
    this.client.close();
  }
}

/** `warren cluster status`: read-only view of a cluster from etcd, no lease taken. */
export interface ClusterStatus {
  readonly leader: string | null;
  readonly term: number | null;
  readonly isr: readonly string[];
  readonly nodes: readonly NodeRecord[];
}

export async function readClusterStatus(endpoints: readonly string[], clusterName: string): Promise<ClusterStatus> {
  const client = etcdClient(endpoints);
  try {
    const prefix = `/warren/${clusterName}/`;
    const [election, isrRaw, nodes] = await Promise.all([
      client.getAll().prefix(`${prefix}election/`).sort('Create', 'Ascend').exec(),
      client.get(`${prefix}isr`).buffer(),
      client.getAll().prefix(`${prefix}nodes/`).buffers(),
    ]);
    const first = election.kvs[0];
    const leader = first === undefined ? null : parseJson<CandidateInfo>(first.value);
    const isr = parseJson<IsrRecord>(isrRaw);
    const records: NodeRecord[] = [];
    for (const v of Object.values(nodes)) {
      const r = parseJson<NodeRecord>(v);
      if (r !== null) records.push(r);
    }
    records.sort((a, b) => a.id.localeCompare(b.id));
    return {
      leader: leader?.id ?? null,
      term: first === undefined ? null : Number(first.create_revision),
      isr: isr?.members ?? [],
      nodes: records.map((r) => ({ ...r, role: r.id === leader?.id ? 'leader' : r.role === 'leader' ? 'follower' : r.role })),
    };
  } finally {
    client.close();
  }
}
