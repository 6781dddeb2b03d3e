import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { encodeProxyV1 } from './proxy-protocol.js';
import { splice } from './proxy-splice.js';

/** where a follower forwards its clients: the leader it knows (LeaderInfo's fields it needs) */
export interface ProxyLeader {
  readonly id: string;
  readonly cluster: string;
  readonly term: number;
}

export interface ClientProxyOptions {
  readonly selfId: string;
  /** the leader as this node knows it now; null while there is none */
  leader(): ProxyLeader | null;
  /**
   * opens an authenticated proxy link to a leader's cluster port; `ready` resolves with the
   * bytes that followed the handshake, and rejects when the link fails before it is up
   */
  dial(leader: ProxyLeader): { upstream: Duplex; ready: Promise<Buffer> };
  /** true while this node serves clients itself (it leads, or is being promoted and holds them) */
  servesLocally(): boolean;
  /** hands a client to this node's own broker; `head` (what it sent so far) is read first */
  serveLocally(client: Socket, head: Buffer): void;
  /** how long a client may wait, from its connect, for a leader to answer it; then it is closed */
  readonly waitMs: number;
  /** client bytes kept for a replay before a leader answered; a client sending more is closed */
  readonly maxBuffered: number;
  /** clients waiting for a leader at most; more are closed at once */
  readonly maxPending: number;
  /** first delay before trying the same leader again after it failed (doubles up to 1 s) */
  readonly retryMs: number;
  /** see splice() */
  readonly lingerMs: number;
  readonly logger: Logger;
}

const RETRY_MAX_MS = 1000;

function sameLeader(a: ProxyLeader | null, b: ProxyLeader | null): boolean {
  return a !== null && b !== null && a.id === b.id && a.term === b.term;
}

/**
 * A follower's forwarding of client connections to the leader, kept alive through a failover
 * that happens while the client connects (docs/clustering.md, "Connections during failover").
 *
 * Until the leader sends the first byte back, a forwarded connection is only pending: what
 * the client sent (its protocol header) is kept, at most `maxBuffered` bytes. If the link to
 * the leader fails in that time (refused, reset, closed, the handshake timing out) or the
 * leader changes, the connection waits for a leader again, and the kept bytes are sent again
 * to the next one, after a fresh PROXY v1 header with the client's address. Nothing the client
 * saw can differ: no leader had answered it. If this node itself leads meanwhile, the client
 * is handed to its own broker with the kept bytes. A client that no leader answered within
 * `waitMs` of its connect is closed (it reconnects).
 *
 * Once the leader answered, the two sockets are spliced (proxy-splice.ts) and nothing is
 * replayed ever again: the AMQP session exists on that leader only. Those connections close
 * when that leader's term ends (a newer leader or none), as their clients must reconnect.
 */
export class ClientProxy {
  private readonly pending = new Set<PendingClient>();
  /** spliced connections: the client's socket, the term of the leader it is joined to */
  private readonly spliced = new Map<Duplex, number>();
  private closed = false;

  constructor(readonly o: ClientProxyOptions) {}

  /** clients waiting for a leader to answer them */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** client bytes kept for a replay */
  get pendingBytes(): number {
    let n = 0;
    for (const p of this.pending) n += p.bufferedBytes;
    return n;
  }

  /** clients joined to a leader */
  get splicedCount(): number {
    return this.spliced.size;
  }

  accept(client: Socket): void {
    if (this.closed || this.pending.size >= this.o.maxPending) {
      client.destroy();
      return;
    }
    const p = new PendingClient(this, client);
    this.pending.add(p);
    p.start();
  }

  /** the coordinator saw the leader change: joined connections to an older term close, pending ones move on */
  leaderChanged(leader: ProxyLeader | null): void {
    for (const [client, term] of this.spliced) if (leader === null || term !== leader.term) client.destroy();
    for (const p of [...this.pending]) p.leaderChanged(leader);
  }

  /** this node may now serve clients itself (its promotion began): pending clients are handed over */
  wake(): void {
    for (const p of [...this.pending]) p.tryNext();
  }

  /** closes every joined connection (this node stops: the leader's sessions end with the link) */
  dropSpliced(): void {
    for (const client of this.spliced.keys()) client.destroy();
  }

  close(): void {
    this.closed = true;
    for (const p of [...this.pending]) p.fail('the node is stopping');
    this.dropSpliced();
  }

  /** @internal */
  done(p: PendingClient): void {
    this.pending.delete(p);
  }

  /** @internal the leader answered: the client's socket and the link are joined for good */
  join(client: Socket, upstream: Duplex, term: number): void {
    this.spliced.set(client, term);
    const drop = (): void => {
      this.spliced.delete(client);
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', drop);
    client.on('close', drop);
    if (this.closed) {
      drop();
      return;
    }
    splice(client, upstream, this.o.lingerMs, drop);
  }
}

interface Attempt {
  readonly leader: ProxyLeader;
  readonly upstream: Duplex;
  /** the handshake is done and the kept bytes were sent */
  linked: boolean;
}

const noop = (): void => {};

class PendingClient {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private attempt: Attempt | null = null;
  /** the leader the last failed attempt went to, and the delay before trying it again */
  private failedLeader: ProxyLeader | null = null;
  private backoff: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private finished = false;
  private attempts = 0;
  /** it had to wait for a leader (none known, or one failed it) */
  private waited = false;
  private readonly log: Logger;

  constructor(
    private readonly proxy: ClientProxy,
    private readonly client: Socket,
  ) {
    this.backoff = proxy.o.retryMs;
    this.log = proxy.o.logger;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  start(): void {
    const c = this.client;
    c.on('error', noop);
    c.on('data', this.onClientData);
    c.on('close', this.onClientClose);
    this.deadline = setTimeout(() => this.fail(`no leader answered within ${this.proxy.o.waitMs} ms`), this.proxy.o.waitMs);
    this.deadline.unref();
    this.tryNext();
  }

  private readonly onClientData = (chunk: Buffer): void => {
    // the limit before the bytes are kept: a client sends 8 bytes before the server speaks
    if (this.buffered + chunk.length > this.proxy.o.maxBuffered) {
      this.fail(`the client sent more than ${this.proxy.o.maxBuffered} bytes before a leader answered`);
      return;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const a = this.attempt;
    if (a !== null && a.linked) a.upstream.write(chunk);
  };

  private readonly onClientClose = (): void => this.fail(null);

  /** tries to get the client served: here, or through the leader known now; else waits for a change */
  tryNext(): void {
    if (this.finished || this.attempt !== null) return;
    this.clearRetry();
    const o = this.proxy.o;
    if (o.servesLocally()) {
      this.detach();
      const head = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
      this.chunks.length = 0;
      this.buffered = 0;
      this.log.info({ peer: this.peer(), attempts: this.attempts }, 'cluster: a forwarded client is served here after a failover');
      o.serveLocally(this.client, head);
      return;
    }
    const leader = o.leader();
    if (leader === null || leader.id === o.selfId) {
      this.waited = true;
      return; // until leaderChanged or wake
    }
    if (sameLeader(leader, this.failedLeader)) {
      this.waited = true;
      // the same leader failed just now: try it again after a delay (it may be about to open, or about to be replaced)
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.failedLeader = null;
        this.tryNext();
      }, this.backoff);
      this.retryTimer.unref();
      this.backoff = Math.min(this.backoff * 2, RETRY_MAX_MS);
      return;
    }
    this.connect(leader);
  }

  leaderChanged(leader: ProxyLeader | null): void {
    if (this.finished) return;
    const a = this.attempt;
    // the leader being tried lost its term, or a newer one exists: nothing it sent reached the client
    if (a !== null && !sameLeader(a.leader, leader)) this.abandon(a, 'the leader changed');
    if (!sameLeader(leader, this.failedLeader)) {
      this.failedLeader = null;
      this.backoff = this.proxy.o.retryMs;
    }
    this.tryNext();
  }

  private connect(leader: ProxyLeader): void {
    this.attempts++;
    let link: { upstream: Duplex; ready: Promise<Buffer> };
    try {
      link = this.proxy.o.dial(leader);
    } catch (err) {
      this.failedLeader = leader;
      this.log.warn({ err, leader: leader.id }, 'cluster: cannot dial the leader for a client');
      this.tryNext();
      return;
    }
    const a: Attempt = { leader, upstream: link.upstream, linked: false };
    this.attempt = a;
    a.upstream.on('error', noop);
    const onData = (chunk: Buffer): void => this.answered(a, chunk, onData, onClose);
    const onClose = (): void => this.abandon(a, 'the link closed before the leader answered');
    a.upstream.on('close', onClose);
    link.ready.then(
      (rest) => {
        if (this.attempt !== a) return;
        const c = this.client;
        a.upstream.write(encodeProxyV1(c.remoteAddress, c.remotePort, c.localAddress, c.localPort));
        for (const chunk of this.chunks) a.upstream.write(chunk);
        a.linked = true;
        if (rest.length > 0) this.answered(a, rest, onData, onClose);
        else a.upstream.on('data', onData);
      },
      (err: unknown) => this.abandon(a, err instanceof Error ? err.message : String(err)),
    );
  }

  /** the leader sent its first bytes: from now on the connection lives or dies with this link */
  private answered(a: Attempt, first: Buffer, onData: (b: Buffer) => void, onClose: () => void): void {
    if (this.attempt !== a || this.finished) return;
    a.upstream.off('data', onData);
    a.upstream.off('close', onClose);
    this.attempt = null;
    this.detach();
    this.chunks.length = 0;
    this.buffered = 0;
    if (this.waited) this.log.info({ peer: this.peer(), leader: a.leader.id, term: a.leader.term, attempts: this.attempts }, 'cluster: a forwarded client reached the leader after a failover');
    this.client.write(first);
    this.proxy.join(this.client, a.upstream, a.leader.term);
  }

  /** an attempt that failed before the leader answered: the client waits for the next leader */
  private abandon(a: Attempt, reason: string): void {
    if (this.attempt !== a) return;
    this.attempt = null;
    a.upstream.destroy();
    if (this.finished) return;
    this.failedLeader = a.leader;
    this.waited = true;
    this.log.debug({ peer: this.peer(), leader: a.leader.id, term: a.leader.term, reason }, 'cluster: forwarding a client failed before the leader answered; waiting for a leader');
    this.tryNext();
  }

  /** closes the client (reason null: it closed itself) */
  fail(reason: string | null): void {
    if (this.finished) return;
    const a = this.attempt;
    this.attempt = null;
    a?.upstream.destroy();
    this.detach();
    if (reason !== null) this.log.warn({ peer: this.peer(), attempts: this.attempts, reason }, 'cluster: closing a client no leader could serve');
    this.client.destroy();
  }

  /** this object lets go of the client (served, joined, or closed) */
  private detach(): void {
    this.finished = true;
    this.clearRetry();
    if (this.deadline !== null) clearTimeout(this.deadline);
    this.deadline = null;
    this.client.off('data', this.onClientData);
    this.client.off('close', this.onClientClose);
    this.proxy.done(this);
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private peer(): string {
    return `${this.client.remoteAddress}:${this.client.remotePort}`;
  }
}
