import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ApplyTarget, PreparedWrite, StoreSnapshot } from './apply-target.js';
import { FrameDecoder, FrameType, frame, frameHead, LinkError, readU64, u64 } from './link.js';
import type { OpLog } from './op-log.js';
import { RecordArena } from './record-arena.js';
import { decodeRecord, encodeRecord, type Op } from './record.js';

/** What the leader needs from its coordinator. */
export interface LeaderGate {
  /** nothing is confirmed unless this is true at that moment (the lease deadline) */
  canCommit(): boolean;
  /** writes the ISR fenced on this leader's lease and term; false when fenced out */
  writeIsr(members: readonly string[]): Promise<boolean>;
}

export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
}

export interface ReplicationLeaderOptions {
  readonly log: OpLog;
  readonly target: ApplyTarget;
  readonly nodeId: string;
  readonly term: number;
  readonly gate: LeaderGate;
  /** fewest nodes (leader included) that must hold a record before it commits */
  readonly minInsync: number;
  /** an ISR follower that makes no progress for this long is evicted */
  readonly followerAckTimeoutMs: number;
  /** records kept in the log behind the applied position for followers that drop briefly */
  readonly retainRecords: number;
  readonly logger: Logger;
}

interface Pending {
  readonly seq: number;
  readonly term: number;
  readonly ops: readonly Op[];
  /** the store write, built while the followers ack (null for records inherited at promotion) */
  prepared: PreparedWrite | null;
  readonly done: ((error: Error | null) => void) | null;
}

interface Session {
  readonly id: string;
  readonly socket: Duplex;
  readonly decoder: FrameDecoder;
  following: boolean;
  nextSeq: number;
  pumping: boolean;
  snapshotSeq: number | null;
  closed: boolean;
  /** the commit point this follower was last told (with a record or a Commit frame) */
  sentCommit: number;
  /** socket writes of records not completed yet (their buffers are still being read) */
  writing: number;
  /** highest seq whose record's socket write completed */
  writtenSeq: number;
}

const HEARTBEAT_MS = 100;
const IDLE_COMMIT_MS = 500;
/** a commit point not carried by a record within this long goes out in a Commit frame */
const COMMIT_NOTIFY_MS = 20;
const SNAPSHOT_CHUNK = 1000;
const PRUNE_EVERY = 1024;
const HIGH_WATER = 4 * 1024 * 1024;
/** the slab the leader encodes records into (reused: see RecordArena) */
const ARENA_BYTES = 16 * 1024 * 1024;
/** records the log has are kept in `inflight` for following sessions up to this much */
const INFLIGHT_MAX_BYTES = 16 * 1024 * 1024;

export interface LeaderStatus {
  readonly role: 'leader';
  readonly term: number;
  readonly lastSeq: number;
  readonly commitSeq: number;
  readonly appliedSeq: number;
  readonly isr: readonly string[];
  readonly followers: readonly { id: string; connected: boolean; matchSeq: number; lag: number; inIsr: boolean }[];
}

/**
 * The leader's side of replication. Every store write becomes a record (term, seq, ops):
 * it is written to the leader's op log and streamed to every connected follower; it
 * commits once the leader's log has it and every ISR follower acked it (each ack means
 * "in my log, fsynced"), and only while the lease deadline holds. Committed records are
 * applied to the store in seq order, then their writer is told (and with it the
 * confirms and -oks that wait for the store).
 *
 * ISR: a follower joins once it acked everything up to the commit point (it is waited
 * for from then on, then written to etcd). A follower that disconnects, or makes no
 * progress for followerAckTimeoutMs while behind, is evicted: the smaller ISR is written
 * to etcd (fenced) first, and only then does the leader stop waiting for it.
 */
export class ReplicationLeader extends EventEmitter {
  private readonly pending: Pending[] = [];
  /** followers whose acks every commit waits for (the ISR minus the leader) */
  private readonly waitset = new Set<string>();
  /** the ISR as last written to etcd (leader included) */
  private etcdIsr = new Set<string>();
  private readonly match = new Map<string, number>();
  /** when a waited-for follower was last seen making progress while behind */
  private readonly behindSince = new Map<string, number>();
  private readonly evicting = new Set<string>();
  private readonly sessions = new Map<string, Session>();
  /** closed sessions with socket writes of records not completed yet */
  private readonly closing = new Set<Session>();
  private lastSeq: number;
  private localSeq: number;
  private commitSeq: number;
  private appliedSeq: number;
  private appliedTerm: number;
  private logQueue: Buffer[] = [];
  /**
   * records from their append until the log has them and every following session wrote
   * them to its socket (sent in parallel with the log write; a session that is not
   * following yet reads them from the log later)
   */
  private readonly inflight = new Map<number, Buffer>();
  /** lowest seq that may still be in `inflight` */
  private inflightFrom = 1;
  private inflightBytes = 0;
  /** the records' buffers, reused once released (never cached by the log) */
  private readonly arena = new RecordArena(ARENA_BYTES);
  private readonly cacheable = (r: Buffer): boolean => !this.arena.owns(r);
  private readonly allocRecord = (size: number): Buffer => this.arena.alloc(this.lastSeq, size);
  private logWriting = false;
  private applying = false;
  private snapshotWaiters: ((s: { seq: number; term: number; view: StoreSnapshot }) => void)[] = [];
  private isrChain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private commitNotifyScheduled = false;
  private commitNotifyTimer: NodeJS.Timeout | null = null;
  private lastCommitSentAt = 0;
  private appendsSincePrune = 0;
  private stopped = false;

  constructor(private readonly o: ReplicationLeaderOptions) {
    super();
    const last = o.log.lastPosition;
    this.lastSeq = last.seq;
    this.localSeq = last.seq;
    this.inflightFrom = last.seq + 1;
    this.appliedSeq = o.log.applied.seq;
    this.appliedTerm = o.log.applied.term;
    this.commitSeq = this.appliedSeq;
  }

  /**
   * Writes the ISR (`members`, the leader added), then commits the log's inherited tail and a
   * term-start record; resolves once that record committed (the leader is then in business).
   */
  async start(members: readonly string[]): Promise<void> {
    const initial = new Set(members);
    initial.add(this.o.nodeId);
    const now = performance.now();
    for (const id of initial) {
      if (id === this.o.nodeId) continue;
      this.waitset.add(id);
      this.match.set(id, 0);
      this.behindSince.set(id, now);
    }
    this.timer = setInterval(() => this.tick(), HEARTBEAT_MS);
    this.timer.unref();
    // first in the ISR chain: a follower that catches up meanwhile (the previous leader,
    // rejoining) is written after it, onto this ISR, never onto the empty one before it
    const write = this.isrChain.then(() => this.o.gate.writeIsr([...initial]));
    this.isrChain = write.then(
      (ok) => {
        if (ok) this.etcdIsr = initial;
      },
      () => {},
    );
    const ok = await write;
    if (!ok) throw new NotLeaderError('fenced out while writing the ISR');
    // records a previous leader sent us but whose commit we never learnt: commit them now (Raft)
    for (let seq = this.appliedSeq + 1; seq <= this.lastSeq; seq++) {
      const buf = await this.o.log.get(seq);
      if (buf === undefined) throw new Error(`op log hole at ${seq}`);
      const r = decodeRecord(buf);
      this.pending.push({ seq: r.seq, term: r.term, ops: r.ops, prepared: null, done: null });
    }
    await this.append([]);
  }

  get term(): number {
    return this.o.term;
  }

  /** replicates one store write; resolves when it is committed and applied to the store */
  append(ops: readonly Op[]): Promise<void> {
    if (this.stopped) return Promise.reject(new NotLeaderError('not the leader any more'));
    const seq = ++this.lastSeq;
    const rec = encodeRecord(this.o.term, seq, ops, this.allocRecord);
    return new Promise<void>((resolve, reject) => {
      const p: Pending = { seq, term: this.o.term, ops, prepared: null, done: (err) => (err === null ? resolve() : reject(err)) };
      this.pending.push(p);
      this.logQueue.push(rec);
      this.inflight.set(seq, rec);
      this.inflightBytes += rec.length;
      void this.writeLog();
      for (const s of this.sessions.values()) {
        if (!s.following) continue;
        if (this.waitset.has(s.id) && (this.match.get(s.id) ?? 0) === seq - 1) this.behindSince.set(s.id, performance.now());
        this.pump(s);
      }
      // the store write is built while the record travels (applied only once it commits)
      try {
        p.prepared = this.o.target.prepare(ops);
      } catch (err) {
        this.fail(err);
      }
      if (++this.appendsSincePrune >= Math.min(PRUNE_EVERY, Math.max(1, this.o.retainRecords))) {
        this.appendsSincePrune = 0;
        void this.prune();
      }
    });
  }

  private async writeLog(): Promise<void> {
    if (this.logWriting) return;
    this.logWriting = true;
    try {
      while (this.logQueue.length > 0 && !this.stopped) {
        const records = this.logQueue;
        this.logQueue = [];
        // alone, the leader's log is the only copy: sync it; otherwise the followers' synced logs are
        await this.o.log.append(records, this.waitset.size === 0, this.cacheable);
        this.localSeq = this.o.log.lastPosition.seq;
        this.releaseRecords();
        this.tryCommit();
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.logWriting = false;
    }
  }

  private tryCommit(): void {
    if (this.stopped || !this.o.gate.canCommit()) return;
    if (this.waitset.size + 1 < this.o.minInsync) return;
    let c = this.localSeq;
    for (const id of this.waitset) c = Math.min(c, this.match.get(id) ?? 0);
    if (c <= this.commitSeq) return;
    this.commitSeq = c;
    this.scheduleCommitNotify();
    void this.applyLoop();
  }

  private async applyLoop(): Promise<void> {
    if (this.applying) return;
    this.applying = true;
    try {
      for (;;) {
        this.serveSnapshots();
        // every committed record waiting is applied in one store write (usually one: the
        // store keeps one batch in flight), then their writers are told in seq order
        let n = 0;
        while (n < this.pending.length && this.pending[n]!.seq <= this.commitSeq) n++;
        if (n === 0 || this.stopped) break;
        // the deadline is checked again right before the writers are told (confirms follow)
        if (!this.o.gate.canCommit()) break;
        const group = this.pending.slice(0, n);
        if (n === 1 && group[0]!.prepared !== null) {
          const w = group[0]!.prepared;
          group[0]!.prepared = null;
          await w.write();
        } else {
          const all: Op[] = [];
          for (const p of group) {
            p.prepared?.discard();
            p.prepared = null;
            for (const op of p.ops) all.push(op);
          }
          await this.o.target.apply(all);
        }
        if (this.stopped) break; // stop() has answered every writer already
        this.pending.splice(0, n);
        const lastApplied = group[n - 1]!;
        this.appliedSeq = lastApplied.seq;
        this.appliedTerm = lastApplied.term;
        for (const p of group) {
          if (p.done === null) continue;
          try {
            p.done(null);
          } catch (err) {
            this.o.logger.error({ err }, 'cluster: commit callback threw');
          }
        }
      }
      // noted behind the log's writes, not waited for: it may lag the store (see OpLog)
      if (!this.stopped) this.o.log.noteApplied({ seq: this.appliedSeq, term: this.appliedTerm });
    } catch (err) {
      this.fail(err);
    } finally {
      this.applying = false;
    }
    this.serveSnapshots();
  }

  private serveSnapshots(): void {
    if (this.snapshotWaiters.length === 0) return;
    const waiters = this.snapshotWaiters;
    this.snapshotWaiters = [];
    for (const w of waiters) w({ seq: this.appliedSeq, term: this.appliedTerm, view: this.o.target.snapshot() });
  }

  private takeSnapshot(): Promise<{ seq: number; term: number; view: StoreSnapshot }> {
    return new Promise((resolve) => {
      this.snapshotWaiters.push(resolve);
      if (!this.applying) this.serveSnapshots();
    });
  }

  private scheduleCommitNotify(): void {
    if (this.commitNotifyScheduled) return;
    this.commitNotifyScheduled = true;
    // Under load the next record carries the commit point (its frame head) within a few ms,
    // so a Commit frame of its own is sent only when none went out for COMMIT_NOTIFY_MS: one
    // small write and one wake-up less per follower and per record (on one machine's
    // cores, each wake-up of a follower is CPU the cluster's throughput pays for). Nothing
    // waits for a follower's apply: confirms wait for the followers' acks and the leader's
    // own store; a follower only applies a little later.
    this.commitNotifyTimer = setTimeout(() => {
      this.commitNotifyTimer = null;
      this.commitNotifyScheduled = false;
      this.sendCommit(false);
    }, COMMIT_NOTIFY_MS);
    this.commitNotifyTimer.unref();
  }

  /** tells followers the commit point: those not told yet, or all of them (heartbeat) */
  private sendCommit(all: boolean): void {
    if (this.stopped) return;
    this.lastCommitSentAt = performance.now();
    const f = frame(FrameType.Commit, u64(this.commitSeq));
    for (const s of this.sessions.values()) {
      if (!s.following || s.closed || (!all && s.sentCommit >= this.commitSeq)) continue;
      s.sentCommit = this.commitSeq;
      s.socket.write(f);
    }
  }

  private tick(): void {
    if (this.stopped) return;
    const now = performance.now();
    if (now - this.lastCommitSentAt >= IDLE_COMMIT_MS) this.sendCommit(true);
    for (const id of this.waitset) {
      if (this.evicting.has(id)) continue;
      const since = this.behindSince.get(id);
      if ((this.match.get(id) ?? 0) < this.lastSeq && since !== undefined && now - since > this.o.followerAckTimeoutMs) {
        this.o.logger.warn({ follower: id, matchSeq: this.match.get(id) ?? 0, lastSeq: this.lastSeq }, 'cluster: follower too slow; evicting it from the ISR');
        this.evict(id);
      }
    }
    // a commit held back only by the deadline check resumes once the lease is renewed
    this.tryCommit();
    if (!this.applying && this.pending.length > 0 && this.pending[0]!.seq <= this.commitSeq) void this.applyLoop();
  }

  // ------------------------------------------------------------------ ISR

  private changeIsr(mutate: (s: Set<string>) => void, after: () => void): void {
    this.isrChain = this.isrChain.then(async () => {
      for (let delay = 100; !this.stopped; delay = Math.min(delay * 2, 1000)) {
        const next = new Set(this.etcdIsr);
        mutate(next);
        next.add(this.o.nodeId);
        if (next.size === this.etcdIsr.size && [...next].every((x) => this.etcdIsr.has(x))) {
          after();
          return;
        }
        try {
          const ok = await this.o.gate.writeIsr([...next]);
          if (!ok) {
            this.o.logger.warn('cluster: ISR write fenced out: this node no longer leads');
            this.emit('fenced');
            return;
          }
          this.etcdIsr = next;
          this.o.logger.info({ isr: [...next].sort() }, 'cluster: ISR written');
          after();
          return;
        } catch (err) {
          this.o.logger.warn({ err }, 'cluster: ISR write failed; retrying');
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    });
  }

  private evict(id: string): void {
    if (!this.waitset.has(id) || this.evicting.has(id)) return;
    this.evicting.add(id);
    // commits keep waiting for it until etcd holds the smaller ISR
    this.changeIsr(
      (s) => s.delete(id),
      () => {
        this.evicting.delete(id);
        this.waitset.delete(id);
        this.behindSince.delete(id);
        this.tryCommit();
      },
    );
  }

  private join(id: string): void {
    if (this.waitset.has(id)) return;
    // waited for first, then written: etcd never lists a member missing a committed record
    this.waitset.add(id);
    this.behindSince.delete(id);
    this.o.logger.info({ follower: id, matchSeq: this.match.get(id) }, 'cluster: follower caught up; joining the ISR');
    this.changeIsr((s) => s.add(id), () => {});
  }

  // ------------------------------------------------------------------ followers

  /** takes over an authenticated replication link (the cluster server did the handshake) */
  attach(socket: Duplex, nodeId: string, rest: Buffer): void {
    if (this.stopped || nodeId === this.o.nodeId) {
      socket.destroy();
      return;
    }
    const old = this.sessions.get(nodeId);
    if (old !== undefined) this.closeSession(old, 'replaced by a new link', false);
    const decoder = new FrameDecoder();
    decoder.maxFrame = 4096;
    const s: Session = { id: nodeId, socket, decoder, following: false, nextSeq: 0, pumping: false, snapshotSeq: null, closed: false, sentCommit: 0, writing: 0, writtenSeq: 0 };
    this.sessions.set(nodeId, s);
    const onData = (chunk: Buffer): void => {
      try {
        decoder.push(chunk);
        for (let f = decoder.next(); f !== null && !s.closed; f = decoder.next()) this.onFrame(s, f.type, f.payload);
      } catch (err) {
        this.closeSession(s, err instanceof Error ? err.message : String(err), true);
      }
    };
    socket.on('data', onData);
    socket.on('error', () => {});
    socket.on('close', () => this.closeSession(s, 'link closed', true));
    if (rest.length > 0) onData(rest);
  }

  private onFrame(s: Session, type: number, payload: Buffer): void {
    if (type === FrameType.Follow && !s.following && s.nextSeq === 0) {
      const f = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
      const n = (k: string): number => {
        const v = f[k];
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new LinkError(`bad FOLLOW field ${k}`);
        return v;
      };
      s.nextSeq = -1; // deciding
      void this.startFollowing(s, { appliedSeq: n('appliedSeq'), appliedTerm: n('appliedTerm'), lastSeq: n('lastSeq'), lastTerm: n('lastTerm') }).catch((err) =>
        this.closeSession(s, err instanceof Error ? err.message : String(err), true),
      );
      return;
    }
    if (type === FrameType.Ack && s.following) {
      const seq = readU64(payload, 0);
      if (seq > this.lastSeq) throw new LinkError('ack beyond the log');
      this.onAck(s, seq);
      return;
    }
    throw new LinkError(`unexpected frame ${type}`);
  }

  private async startFollowing(s: Session, f: { appliedSeq: number; appliedTerm: number; lastSeq: number; lastTerm: number }): Promise<void> {
    const log = this.o.log;
    const base = log.basePosition.seq;
    const has = async (seq: number, term: number): Promise<boolean> => seq >= base && seq <= this.lastSeq && (await log.termAt(seq)) === term;
    let from: number | null = null;
    if (await has(f.lastSeq, f.lastTerm)) from = f.lastSeq + 1;
    else if (await has(f.appliedSeq, f.appliedTerm)) from = f.appliedSeq + 1;
    if (s.closed) return;
    if (from === null) {
      this.o.logger.info({ follower: s.id, appliedSeq: f.appliedSeq, base }, 'cluster: follower needs a snapshot');
      await this.sendSnapshot(s);
      return;
    }
    this.match.set(s.id, Math.max(this.waitset.has(s.id) ? (this.match.get(s.id) ?? 0) : 0, from - 1));
    s.nextSeq = from;
    s.writtenSeq = Math.max(s.writtenSeq, from - 1);
    s.following = true;
    s.socket.write(frame(FrameType.StreamFrom, u64(from)));
    s.socket.write(frame(FrameType.Commit, u64(this.commitSeq)));
    s.sentCommit = this.commitSeq;
    this.o.logger.info({ follower: s.id, from }, 'cluster: follower attached');
    this.onAck(s, from - 1);
    this.pump(s);
  }

  private async sendSnapshot(s: Session): Promise<void> {
    const snap = await this.takeSnapshot();
    s.snapshotSeq = snap.seq;
    try {
      s.socket.write(frame(FrameType.SnapshotBegin, u64(snap.seq), u64(snap.term)));
      for await (const rows of snap.view.entries(SNAPSHOT_CHUNK)) {
        if (s.closed) return;
        const parts: Buffer[] = [];
        for (const [k, v] of rows) {
          const h = Buffer.allocUnsafe(4);
          h.writeUInt32BE(k.length, 0);
          const hv = Buffer.allocUnsafe(4);
          hv.writeUInt32BE(v.length, 0);
          parts.push(h, k, hv, v);
        }
        if (!s.socket.write(frame(FrameType.SnapshotChunk, ...parts))) await new Promise((r) => s.socket.once('drain', r));
      }
      s.socket.write(frame(FrameType.SnapshotEnd));
    } finally {
      await snap.view.close();
    }
    s.nextSeq = snap.seq + 1;
    s.writtenSeq = Math.max(s.writtenSeq, snap.seq);
    s.following = true;
    s.snapshotSeq = null;
    this.match.set(s.id, this.waitset.has(s.id) ? Math.min(this.match.get(s.id) ?? 0, snap.seq) : 0);
    this.o.logger.info({ follower: s.id, seq: snap.seq }, 'cluster: snapshot sent');
    this.pump(s);
  }

  private onAck(s: Session, seq: number): void {
    const before = this.match.get(s.id) ?? 0;
    if (seq > before) this.match.set(s.id, seq);
    const now = performance.now();
    if (this.waitset.has(s.id)) {
      if (seq >= this.lastSeq) this.behindSince.delete(s.id);
      else if (seq > before || !this.behindSince.has(s.id)) this.behindSince.set(s.id, now);
      this.tryCommit();
    } else if (!this.stopped && seq >= this.commitSeq && !this.evicting.has(s.id)) {
      this.join(s.id);
    }
  }

  private pump(s: Session): void {
    if (s.pumping || !s.following || s.closed) return;
    s.pumping = true;
    void this.pumpLoop(s);
  }

  private async pumpLoop(s: Session): Promise<void> {
    try {
      while (!s.closed && s.nextSeq <= this.lastSeq) {
        const seq = s.nextSeq;
        const rec = this.inflight.get(seq) ?? (await this.o.log.get(seq));
        if (rec === undefined) {
          if (s.nextSeq <= this.o.log.basePosition.seq) {
            // pruned meanwhile: start over from a snapshot
            s.following = false;
            await this.sendSnapshot(s);
            continue;
          }
          return; // not written to the log yet: the append that writes it pumps again
        }
        s.nextSeq++;
        // header and record as two writes of one writev: the record is not copied
        s.socket.cork();
        s.socket.write(frameHead(FrameType.Record, 8 + rec.length, this.commitSeq));
        s.sentCommit = this.commitSeq;
        s.writing++;
        const more = s.socket.write(rec, () => this.recordWritten(s, seq));
        s.socket.uncork();
        if (!more || s.socket.writableLength > HIGH_WATER) {
          await new Promise((r) => s.socket.once('drain', r));
        }
      }
    } catch (err) {
      this.closeSession(s, err instanceof Error ? err.message : String(err), true);
    } finally {
      // synchronous when nothing was awaited: an append right after sees the pump idle
      s.pumping = false;
    }
  }

  /** a record's socket write completed (or was dropped with its socket): its buffer is free of it */
  private recordWritten(s: Session, seq: number): void {
    s.writing--;
    if (seq > s.writtenSeq) s.writtenSeq = seq;
    if (s.closed && s.writing === 0) this.closing.delete(s);
    this.releaseRecords();
  }

  /**
   * Drops records from `inflight` once the log has them and every following session wrote
   * them; their arena slots are reused once, besides, no closed session's socket write may
   * still read them.
   */
  private releaseRecords(): void {
    let upTo = this.localSeq;
    for (const s of this.sessions.values()) if (s.following && !s.closed) upTo = Math.min(upTo, s.writtenSeq);
    // a session further behind than INFLIGHT_MAX_BYTES reads the rest from the log
    while (this.inflightFrom <= this.localSeq && (this.inflightFrom <= upTo || this.inflightBytes > INFLIGHT_MAX_BYTES)) {
      const r = this.inflight.get(this.inflightFrom);
      if (r !== undefined) {
        this.inflightBytes -= r.length;
        this.inflight.delete(this.inflightFrom);
      }
      this.inflightFrom++;
    }
    for (const s of this.closing) upTo = Math.min(upTo, s.writtenSeq);
    this.arena.release(upTo);
  }

  private closeSession(s: Session, reason: string, evict: boolean): void {
    if (s.closed) return;
    s.closed = true;
    if (s.writing > 0) this.closing.add(s);
    s.socket.destroy();
    if (this.sessions.get(s.id) === s) this.sessions.delete(s.id);
    this.releaseRecords();
    this.o.logger.info({ follower: s.id, reason }, 'cluster: follower link closed');
    if (evict && !this.stopped && this.waitset.has(s.id) && !this.sessions.has(s.id)) this.evict(s.id);
  }

  private async prune(): Promise<void> {
    let floor = this.appliedSeq - this.o.retainRecords;
    for (const s of this.sessions.values()) floor = Math.min(floor, s.snapshotSeq ?? s.nextSeq - 1);
    for (const id of this.waitset) floor = Math.min(floor, this.match.get(id) ?? 0);
    if (floor > this.o.log.basePosition.seq) await this.o.log.prune(floor).catch((err) => this.o.logger.warn({ err }, 'cluster: log prune failed'));
  }

  private fail(err: unknown): void {
    this.o.logger.error({ err }, 'cluster: local write failed; giving up leadership');
    this.emit('failed', err);
  }

  status(): LeaderStatus {
    const ids = new Set([...this.waitset, ...this.sessions.keys(), ...this.etcdIsr]);
    ids.delete(this.o.nodeId);
    return {
      role: 'leader',
      term: this.o.term,
      lastSeq: this.lastSeq,
      commitSeq: this.commitSeq,
      appliedSeq: this.appliedSeq,
      isr: [...this.etcdIsr].sort(),
      followers: [...ids].sort().map((id) => {
        const matchSeq = this.match.get(id) ?? 0;
        return { id, connected: this.sessions.get(id)?.following === true, matchSeq, lag: this.lastSeq - matchSeq, inIsr: this.etcdIsr.has(id) };
      }),
    };
  }

  /** stops leading: nothing more commits; writers still waiting get NotLeaderError */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.commitNotifyTimer !== null) clearTimeout(this.commitNotifyTimer);
    for (const s of [...this.sessions.values()]) this.closeSession(s, 'leader stopped', false);
    const err = new NotLeaderError('leadership lost before the write was confirmed');
    for (const p of this.pending.splice(0)) {
      p.prepared?.discard();
      p.prepared = null;
      p.done?.(err);
    }
  }
}
