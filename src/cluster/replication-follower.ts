import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ApplyTarget } from './apply-target.js';
import { connectHandshake, FRAME_MAX, FrameReader, FrameType, frame, LinkError, Purpose, readU64, u64, type LinkReads } from './link.js';
import type { OpLog } from './op-log.js';
import { recordSeq, recordTerm, validateRecord } from './record.js';

export interface LeaderAddress {
  readonly id: string;
  /** host:port of the leader's cluster port */
  readonly cluster: string;
  readonly term: number;
}

/**
 * opens a link to a leader; with `reads`, it may read straight into `reads.reader` (then it
 * sets `reads.attached`, and the socket emits no 'data')
 */
export type Dialer = (hostPort: string, reads?: LinkReads) => Duplex;

export interface ReplicationFollowerOptions {
  readonly log: OpLog;
  readonly target: ApplyTarget;
  readonly nodeId: string;
  readonly secret: () => Buffer;
  readonly dial: Dialer;
  readonly logger: Logger;
}

export interface FollowerStatus {
  readonly role: 'follower';
  readonly leader: string | null;
  readonly connected: boolean;
  readonly appliedSeq: number;
  readonly logSeq: number;
  readonly commitSeq: number;
  /** committed records not yet in this node's store */
  readonly lag: number;
  readonly syncing: boolean;
}

interface Inbound {
  readonly type: number;
  readonly payload: Buffer;
}

/**
 * the record as a buffer of its own: a view into a larger chunk is copied (the log's cache
 * would keep the whole chunk alive); a frame the decoder assembled is nearly all record
 */
function own(rec: Buffer): Buffer {
  return rec.buffer.byteLength - rec.length <= 64 ? rec : Buffer.from(rec);
}

const RETRY_MS = 300;
/**
 * The peer answered but does not lead the term we follow yet: a node just elected takes a
 * moment to start replicating, and every commit of its first term waits for this
 * follower's ack. Tried again after this long, doubling up to RETRY_MS (a fixed 300 ms
 * was ~0.3 s of every failover: the first try always came before the election was won).
 */
const NOT_YET_LEADING_RETRY_MS = 20;
/** records a follower keeps behind its applied position (it may lead one day and serve catch-up) */
const RETAIN_RECORDS = 20_000;
const PRUNE_EVERY = 1024;
const QUEUE_PAUSE = 256;
/** the store applies committed records in groups of at most this many records or bytes */
const APPLY_GROUP_RECORDS = 1024;
const APPLY_GROUP_BYTES = 32 * 1024 * 1024;

/**
 * The follower's side: connects to the leader's cluster port, says where its log and store
 * stand, then writes the records it receives to its op log (fsynced, several per write
 * when they arrive together) and acks the highest one that matches the leader's log as
 * soon as that write is durable. Beside the link, an applier writes records to the store
 * once the leader says they are committed, several records per store write. So its store only
 * ever holds committed state: the data dir is a valid standalone Warren store at all
 * times except while a snapshot is being installed (then the op log says `syncing`).
 *
 * Log matching: a record at a seq this log already has with the same term is the same
 * record (a leader writes each seq once per term); a different term marks a divergent
 * tail, cut from the log (never below `applied`).
 */
export class ReplicationFollower extends EventEmitter {
  private leader: LeaderAddress | null = null;
  private socket: Duplex | null = null;
  private connected = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private queue: Inbound[] = [];
  private processing: Promise<void> | null = null;
  /** highest seq in our log known to match the leader's log */
  private verified = -1;
  /** the last seq acked on this link (-1: none yet) */
  private ackedSeq = -1;
  private commitKnown = 0;
  /** highest seq known to be committed and held, matching, in this log (only grows, but for a snapshot) */
  private applyUpTo = 0;
  /** the store applier runs beside the link: acks never wait for the store */
  private applier: Promise<void> | null = null;
  private installing = false;
  private leaderTerm = 0;
  private stopped = false;
  private generation = 0;
  /** the next retry's delay (short while the leader we follow is still starting) */
  private retryMs = RETRY_MS;
  /** links refused in a row because the leader we follow was not leading yet */
  private notLeadingTries = 0;

  constructor(private readonly o: ReplicationFollowerOptions) {
    super();
    // records this node knew were committed but had not applied when it stopped: into the
    // store now, so that the data dir holds them without waiting for a leader
    this.applyUpTo = Math.min(o.log.committed, o.log.lastPosition.seq);
    if (this.applyUpTo > o.log.applied.seq) {
      o.logger.info({ applied: o.log.applied.seq, committed: this.applyUpTo }, 'cluster: replaying committed records from the op log into the store');
      this.startApplier();
    }
  }

  /** follows this leader (reconnecting until told otherwise); null = no leader known */
  follow(leader: LeaderAddress | null): void {
    if (this.stopped) return;
    const same = leader !== null && this.leader !== null && leader.id === this.leader.id && leader.term === this.leader.term && leader.cluster === this.leader.cluster;
    if (same) return;
    this.leader = leader;
    this.notLeadingTries = 0;
    this.disconnect();
    if (leader !== null) this.connect();
  }

  private disconnect(): void {
    this.generation++;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.socket?.destroy();
    this.socket = null;
    this.connected = false;
    this.queue = [];
  }

  private scheduleRetry(): void {
    if (this.stopped || this.leader === null || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private connect(): void {
    const leader = this.leader;
    if (leader === null || this.stopped) return;
    const gen = ++this.generation;
    // any failure but "not leading yet" (below) is retried after RETRY_MS
    this.retryMs = RETRY_MS;
    // every frame is read into a buffer of its own size (see FrameReader), through the
    // dialer's reads when it can, else from 'data' events
    const reads: LinkReads = { reader: new FrameReader(), attached: false };
    const socket = this.o.dial(leader.cluster, reads);
    if (!reads.attached) {
      socket.on('data', (chunk: Buffer) => {
        try {
          reads.reader.push(chunk);
        } catch (err) {
          socket.destroy(err instanceof Error ? err : new LinkError(String(err)));
        }
      });
    }
    this.socket = socket;
    socket.on('error', (err) => {
      if (gen === this.generation && err instanceof LinkError) this.o.logger.warn({ err: err.message }, 'cluster: bad replication frame; dropping the link');
    });
    socket.on('close', () => {
      if (gen !== this.generation) return;
      this.connected = false;
      this.socket = null;
      this.scheduleRetry();
    });
    void this.run(socket, reads.reader, leader, gen).catch((err) => {
      if (gen !== this.generation) return;
      this.o.logger.debug({ err: err instanceof Error ? err.message : String(err), leader: leader.id }, 'cluster: replication link failed');
      socket.destroy();
    });
  }

  private async run(socket: Duplex, reader: FrameReader, leader: LeaderAddress, gen: number): Promise<void> {
    // wait for the processing of an earlier link to finish before we describe our log
    await this.processing;
    const hello = await connectHandshake(socket, this.o.secret(), this.o.nodeId, Purpose.Replicate, reader);
    if (gen !== this.generation) return;
    if (hello.nodeId !== leader.id || hello.term !== leader.term) {
      // the node we follow, not leading yet (term 0 while it promotes): soon again
      const starting = hello.nodeId === leader.id && hello.term < leader.term;
      if (starting) this.retryMs = Math.min(RETRY_MS, NOT_YET_LEADING_RETRY_MS * 2 ** this.notLeadingTries++);
      throw new LinkError(`the peer is ${hello.nodeId} term ${hello.term}, not the leader we follow`);
    }
    this.notLeadingTries = 0;
    this.leaderTerm = leader.term;
    this.verified = -1;
    this.ackedSeq = -1;
    const log = this.o.log;
    const last = log.lastPosition;
    socket.write(
      frame(FrameType.Follow, Buffer.from(JSON.stringify({ appliedSeq: log.applied.seq, appliedTerm: log.applied.term, lastSeq: last.seq, lastTerm: last.term }))),
    );
    this.connected = true;
    this.o.logger.info({ leader: leader.id, term: leader.term }, 'cluster: following');
    reader.maxFrame = FRAME_MAX;
    // a frame that breaks the rules throws out of the reader: the dialer's read callback or
    // the 'data' listener, and the socket is destroyed (logged below, with the link's failure)
    reader.setHandler((type, payload) => {
      if (gen !== this.generation) return;
      this.queue.push({ type, payload });
      if (this.queue.length > QUEUE_PAUSE) socket.pause();
      this.kick(socket, gen);
    });
  }

  private kick(socket: Duplex, gen: number): void {
    if (this.processing !== null) return;
    this.processing = this.process(socket, gen)
      .catch((err) => {
        if (gen !== this.generation) return;
        this.o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'cluster: replication stream refused; reconnecting');
        socket.destroy();
      })
      .finally(() => {
        this.processing = null;
        if (gen === this.generation && this.queue.length > 0) this.kick(socket, gen);
      });
  }

  private async process(socket: Duplex, gen: number): Promise<void> {
    const log = this.o.log;
    while (this.queue.length > 0 && gen === this.generation) {
      const batch = this.queue;
      this.queue = [];
      socket.resume();
      const toAppend: Buffer[] = [];
      const flush = async (): Promise<void> => {
        if (toAppend.length === 0) return;
        await log.append(toAppend.splice(0), true);
      };
      for (const { type, payload } of batch) {
        switch (type) {
          case FrameType.StreamFrom: {
            const from = readU64(payload, 0);
            if (from - 1 < log.applied.seq || from - 1 > log.lastPosition.seq) throw new LinkError(`stream from ${from} does not fit this log`);
            this.verified = from - 1;
            break;
          }
          case FrameType.Record: {
            if (this.verified < 0) throw new LinkError('record before the stream start');
            this.commitKnown = Math.max(this.commitKnown, readU64(payload, 0));
            const rec = payload.subarray(8);
            validateRecord(rec); // before anything is written
            const seq = recordSeq(rec);
            const term = recordTerm(rec);
            if (seq !== this.verified + 1) throw new LinkError(`record ${seq} out of order (expected ${this.verified + 1})`);
            if (term > this.leaderTerm) throw new LinkError(`record of term ${term} from a leader of term ${this.leaderTerm}`);
            const pendingLast = toAppend.length > 0 ? recordSeq(toAppend[toAppend.length - 1]!) : log.lastPosition.seq;
            if (seq <= pendingLast) {
              await flush();
              if ((await log.termAt(seq)) !== term) {
                if (seq - 1 < log.applied.seq) throw new LinkError(`the leader's log differs below our applied seq ${log.applied.seq}`);
                await log.truncateAfter(seq - 1);
                toAppend.push(own(rec));
              }
            } else {
              toAppend.push(own(rec));
            }
            this.verified = seq;
            break;
          }
          case FrameType.Commit:
            this.commitKnown = Math.max(this.commitKnown, readU64(payload, 0));
            break;
          case FrameType.SnapshotBegin:
            await flush();
            this.installing = true;
            try {
              await this.applier;
              await this.installSnapshot(readU64(payload, 0), readU64(payload, 8), socket, gen);
            } finally {
              this.installing = false;
            }
            break;
          default:
            throw new LinkError(`unexpected frame ${type}`);
        }
      }
      await flush();
      if (gen !== this.generation) return;
      // an ack only for progress (a Commit frame alone needs no answer)
      if (this.verified >= 0 && this.verified !== this.ackedSeq) {
        this.ackedSeq = this.verified;
        socket.write(frame(FrameType.Ack, u64(this.verified)));
      }
      const upTo = Math.min(this.commitKnown, this.verified);
      if (upTo > this.applyUpTo) {
        this.applyUpTo = upTo;
        // written to meta with the applier's next noteApplied (started below)
        log.noteCommitted(upTo);
      }
      this.startApplier();
    }
  }

  private startApplier(): void {
    if (this.applier !== null || this.installing || this.stopped || this.applyUpTo <= this.o.log.applied.seq) return;
    const before = this.o.log.applied.seq;
    this.applier = this.applyCommitted()
      .catch((err) => this.o.logger.warn({ err }, 'cluster: applying committed records to the store failed; retrying with the next records'))
      .finally(() => {
        this.applier = null;
        if (this.o.log.applied.seq > before) this.startApplier();
      });
  }

  /** snapshot frames follow SnapshotBegin in the queue; they are consumed here */
  private async installSnapshot(seq: number, term: number, socket: Duplex, gen: number): Promise<void> {
    const log = this.o.log;
    this.o.logger.info({ seq, term }, 'cluster: installing a snapshot from the leader');
    await log.beginSnapshot();
    await this.o.target.clear();
    for (;;) {
      if (gen !== this.generation) return;
      const next = this.queue.shift();
      if (next === undefined) {
        socket.resume();
        await new Promise<void>((resolve) => {
          const check = (): void => {
            if (this.queue.length > 0 || gen !== this.generation) resolve();
            else setTimeout(check, 5);
          };
          check();
        });
        continue;
      }
      if (next.type === FrameType.SnapshotEnd) break;
      if (next.type !== FrameType.SnapshotChunk) throw new LinkError(`unexpected frame ${next.type} in a snapshot`);
      const entries: [Buffer, Buffer][] = [];
      const p = next.payload;
      for (let at = 0; at < p.length; ) {
        if (at + 4 > p.length) throw new LinkError('bad snapshot chunk');
        const kl = p.readUInt32BE(at);
        at += 4;
        if (at + kl + 4 > p.length) throw new LinkError('bad snapshot chunk');
        const k = p.subarray(at, at + kl);
        at += kl;
        const vl = p.readUInt32BE(at);
        at += 4;
        if (at + vl > p.length) throw new LinkError('bad snapshot chunk');
        entries.push([k, p.subarray(at, at + vl)]);
        at += vl;
      }
      await this.o.target.putMany(entries);
    }
    await log.finishSnapshot({ seq, term });
    this.verified = seq;
    this.applyUpTo = seq;
    this.o.logger.info({ seq }, 'cluster: snapshot installed');
  }

  /**
   * Applies committed records to the store in groups (one store write for up to
   * APPLY_GROUP_RECORDS records or APPLY_GROUP_BYTES: their ops in order, so a later write
   * of a key wins as it would record by record), then notes the applied position.
   */
  private async applyCommitted(): Promise<void> {
    const log = this.o.log;
    while (!this.installing && !this.stopped) {
      const upTo = this.applyUpTo;
      let applied = log.applied;
      if (upTo <= applied.seq) return;
      const records: Buffer[] = [];
      let bytes = 0;
      const from = applied.seq;
      for (let seq = from + 1; seq <= upTo && seq - from <= APPLY_GROUP_RECORDS && bytes < APPLY_GROUP_BYTES; ) {
        const buf = await log.get(seq);
        if (buf === undefined) throw new Error(`op log hole at ${seq}`);
        records.push(buf);
        bytes += buf.length;
        applied = { seq, term: recordTerm(buf) };
        seq++;
      }
      await this.o.target.applyRecords(records);
      if (this.installing || this.stopped) return;
      log.noteApplied(applied);
      // the log is kept RETAIN_RECORDS behind, pruned in steps of PRUNE_EVERY
      if (applied.seq - log.basePosition.seq > RETAIN_RECORDS + PRUNE_EVERY) await log.prune(applied.seq - RETAIN_RECORDS);
      this.emit('applied', applied.seq);
    }
  }

  status(): FollowerStatus {
    const applied = this.o.log.applied.seq;
    return {
      role: 'follower',
      leader: this.leader?.id ?? null,
      connected: this.connected,
      appliedSeq: applied,
      logSeq: this.o.log.lastPosition.seq,
      commitSeq: this.commitKnown,
      lag: Math.max(0, this.commitKnown - applied),
      syncing: this.o.log.syncing,
    };
  }

  /** stops following; resolves once nothing more is written to the log or the store */
  async stop(): Promise<void> {
    this.stopped = true;
    this.leader = null;
    this.disconnect();
    await this.processing;
    await this.applier;
  }
}
