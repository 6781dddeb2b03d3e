import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { AmqpChannelError, AmqpConnectionError } from '../protocol/errors.js';
import type { FieldTable } from '../protocol/field-types.js';
import { fieldValueToJs } from '../protocol/field-table.js';
import { erlangBinary, FrameReader, type Frame } from '../protocol/frame-reader.js';
import { HEARTBEAT_FRAME } from '../protocol/frame-writer.js';
import { FRAME_MIN_SIZE, FrameType, MethodId, methodName, PROTOCOL_HEADER } from '../protocol/generated/constants.js';
import { decodeMethod, encodeMethodFrame, type Method } from '../protocol/generated/methods.js';
import { decodeHotMethod } from '../protocol/hot-methods.js';
import { speaks091 } from '../protocol/protocol-header.js';
import { ReplyCode, replyCodeName } from '../protocol/reply-code.js';
import { authenticate, closeSession, openSession, saslMechanisms, updateSecret, type Peer } from '../operations/authenticate.js';
import type { ClientConnection, FlowWaiter } from '../operations/core.js';
import type { CreditWaiter, Queue } from '../queue/queue.js';
import type { AuthenticatedUser, Session } from '../operations/session.js';
import { Outbound } from '../transport/outbound.js';
import type { ReadSink, SharedReadInput } from '../transport/listener.js';
import type { BrokerContext } from './broker-context.js';
import { Channel } from './channel.js';
import { ConnectionCounters } from '../stats/counters.js';

/** what a connection may add to a saturated store before flow control holds it (see flowBytes) */
export const FLOW_ALLOWANCE = 64 * 1024;

/** How long we wait for connection.close-ok after sending connection.close. */
const CLOSE_OK_TIMEOUT_MS = 3000;
/**
 * A payload still this short of complete is read straight into its own buffer (one read
 * system call for its rest, no copy); shorter rests come with the next frames through the
 * shared read buffer.
 */
const DIRECT_READ_MIN = 16 * 1024;
/** How long a client has to complete the handshake (RabbitMQ: handshake_timeout 10 s). */
const HANDSHAKE_TIMEOUT_MS = 10_000;

const enum State {
  AwaitHeader,
  AwaitStartOk,
  AwaitTuneOk,
  AwaitOpen,
  Open,
  /** we sent connection.close and wait for close-ok; everything else is discarded */
  Closing,
  Closed,
}

let nextConnectionId = 1;

// Timer callbacks: an exception must never escape to the event loop (it would take every
// connection down with the process); it closes this connection only.
function heartbeatTick(conn: Connection): void {
  try {
    conn.onHeartbeatTick();
  } catch (err) {
    conn.internalFailure(err, 'heartbeat timer');
  }
}
function closeOkTimeout(conn: Connection): void {
  try {
    conn.destroy('connection.close-ok not received in time');
  } catch (err) {
    conn.internalFailure(err, 'close-ok timer');
  }
}
function creditResume(conn: Connection): void {
  try {
    conn.resumeAfterCredit();
  } catch (err) {
    conn.internalFailure(err, 'flow control');
  }
}
function handshakeTimeout(conn: Connection): void {
  try {
    conn.destroy('handshake timeout');
  } catch (err) {
    conn.internalFailure(err, 'handshake timer');
  }
}

/**
 * One AMQP connection: the handshake, channel 0, frame dispatch to channels,
 * heartbeats and both close directions. It accepts any Duplex, so tests can run it
 * over in-memory pairs. Only this layer turns AmqpConnectionError/AmqpChannelError
 * into connection.close / channel.close.
 */
export class Connection implements ClientConnection, FlowWaiter, CreditWaiter, ReadSink {
  readonly id = nextConnectionId++;
  readonly out: Outbound;
  readonly logger: Logger;
  readonly channels = new Map<number, Channel>();
  /** channels with publisher confirms to send at the end of this read */
  readonly pendingConfirms = new Set<Channel>();
  /** socket traffic statistics (read by the stats tick) */
  readonly stats = new ConnectionCounters();
  readonly connectedAt = Date.now();

  username = '';
  /** set by connection.start-ok */
  private user: AuthenticatedUser | null = null;
  private mechanism = '';
  /** set by connection.open: the user in its vhost, what every operation is called with */
  session!: Session;
  frameMax: number;
  channelMax: number;
  heartbeat = 0;
  clientProperties: FieldTable = new Map();
  /** client capabilities (connection.start-ok client-properties.capabilities) */
  consumerCancelNotify = false;
  authenticationFailureClose = false;
  /** the client understands connection.blocked / unblocked */
  connectionBlockedNotify = false;
  /** this connection has published: an alarm blocks it */
  private publisher = false;
  /** reading is paused because a resource alarm blocks publishers */
  private readPaused = false;
  private blockedNotified = false;
  /** reading is paused because the store is behind what this connection published (flow control) */
  private flowPaused = false;
  /**
   * Bytes this connection handed the store since it last found it saturated-free: while the
   * store is behind, a connection is held only once it has added FLOW_ALLOWANCE of its own,
   * so one flooding publisher is held at once and a light one (a confirm every few ms on
   * another queue) is not held behind it. Bounded: connections x FLOW_ALLOWANCE.
   */
  private flowBytes = 0;
  /** reading is paused until this queue's next delivery pass (its publish credit is used up) */
  private creditQueue: Queue | null = null;
  /** processFrames is running (a resume from inside it only lifts the pause) */
  private processing = false;

  private state = State.AwaitHeader;
  /** frames may be views of the listener's shared read buffer (see borrowedRead) */
  private borrowedReads = false;
  private readonly reader: FrameReader;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  private lastReceivedAt = Date.now();
  private lastBytesWritten = 0;
  private cleanedUp = false;
  private closeReason = '';

  constructor(
    readonly socket: Duplex,
    readonly broker: BrokerContext,
    readonly remoteAddress: string | undefined,
    readonly remotePort: number | undefined,
    /** the verified TLS client certificate's login name (SASL EXTERNAL), or null */
    private readonly certificateLogin: string | null = null,
    /** the socket reads into a reused buffer (transport/listener.ts) and hands it here; null: 'data' events */
    reads: SharedReadInput | null = null,
  ) {
    const cfg = broker.config;
    this.frameMax = cfg.frameMax;
    this.channelMax = cfg.channelMax;
    this.reader = new FrameReader(cfg.frameMax);
    this.out = new Outbound(socket);
    this.logger = broker.logger.child({ conn: this.id, peer: `${remoteAddress ?? 'local'}:${remotePort ?? 0}` });
    this.closeTimer = setTimeout(handshakeTimeout, HANDSHAKE_TIMEOUT_MS, this);
    this.closeTimer.unref();
    // socket events: whatever goes wrong inside stays with this connection
    if (reads !== null) {
      this.borrowedReads = true;
      reads.sink = this;
    } else {
      socket.on('data', (chunk: Buffer) => {
        try {
          this.onData(chunk);
        } catch (err) {
          this.internalFailure(err, 'socket data');
        }
      });
    }
    socket.on('drain', () => {
      try {
        this.onDrain();
      } catch (err) {
        this.internalFailure(err, 'socket drain');
      }
    });
    socket.on('error', (err: Error) => {
      this.closeReason ||= err.message;
    });
    socket.on('close', () => {
      try {
        this.cleanup();
      } catch (err) {
        this.logger.error({ err }, 'internal error releasing a closed connection (contained)');
      }
    });
    broker.connectionOpened(this);
  }

  get isOpen(): boolean {
    return this.state === State.Open;
  }

  /** ClientConnection: the vhost this connection opened ('' before connection.open) */
  get vhostName(): string {
    return this.session?.vhost.name ?? '';
  }

  /** ClientConnection: its vhost or user was deleted */
  closeForced(text: string): void {
    this.closeWithError(ReplyCode.ConnectionForced, text, 0, 0);
  }

  private get peer(): Peer {
    return { address: this.remoteAddress, certificateLogin: this.certificateLogin };
  }

  /** the SASL mechanism the client logged in with */
  get authMechanism(): string {
    return this.mechanism;
  }

  /** reading is paused because a resource alarm blocks publishers (RabbitMQ's connection state 'blocked') */
  get blocked(): boolean {
    return this.readPaused;
  }

  /** reading is paused until the store catches up with what this connection published (RabbitMQ's state 'flow') */
  get flow(): boolean {
    return this.flowPaused || this.creditQueue !== null;
  }

  /** not reading: an alarm, the store or a queue holds this connection */
  private get readsHeld(): boolean {
    return this.readPaused || this.flowPaused || this.creditQueue !== null;
  }

  // ---- inbound ------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.state === State.Closed) return;
    this.lastReceivedAt = Date.now();
    this.stats.recvOct += chunk.length;
    this.stats.recvCnt++;
    this.reader.push(chunk);
    this.processFrames();
    this.broker.busyPoll.noteActivity();
  }

  /**
   * ReadSink: bytes read into the listener's shared buffer, which the next read of any
   * connection reuses. Frames are handled from it in place; whatever is not consumed
   * (a frame still arriving, frames held back while reading pauses) is copied out
   * before returning. Never throws (a socket callback).
   */
  borrowedRead(buf: Buffer, length: number): void {
    try {
      if (this.state === State.Closed) return;
      this.lastReceivedAt = Date.now();
      this.stats.recvOct += length;
      this.stats.recvCnt++;
      this.reader.pushBorrowed(buf, length);
      this.processFrames();
      this.broker.busyPoll.noteActivity();
    } catch (err) {
      this.internalFailure(err, 'socket data');
    }
    try {
      this.reader.release();
    } catch (err) {
      this.internalFailure(err, 'socket data');
    }
  }

  /** ReadSink: where this socket's next read goes (the rest of a big payload), or null: the shared buffer */
  readTarget(): Buffer | null {
    return this.state === State.Closed ? null : this.reader.fillTarget(DIRECT_READ_MIN);
  }

  /** ReadSink: n octets were read into readTarget()'s buffer. Never throws (a socket callback). */
  filledRead(n: number): void {
    try {
      if (this.state === State.Closed) return;
      this.lastReceivedAt = Date.now();
      this.stats.recvOct += n;
      this.stats.recvCnt++;
      this.reader.filledInPlace(n);
      this.processFrames();
    } catch (err) {
      this.internalFailure(err, 'socket data');
    }
  }

  /**
   * buf[start, end) as bytes a handler may keep: with borrowed reads, a frame that is not
   * the reader's own copy lies in the shared read buffer and is copied.
   */
  private keepable(buf: Buffer, start: number, end: number, owned: boolean): Buffer {
    const view = owned && start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    return this.borrowedReads && !owned ? Buffer.from(view) : view;
  }

  private processFrames(): void {
    this.processing = true;
    try {
      if (this.state === State.AwaitHeader && !this.readProtocolHeader()) return;
      const r = this.reader;
      // flow control stops at the next frame: a fast publisher gets no more than its
      // queues' credit per turn whatever a read holds (the rest of a borrowed read is
      // copied out by release() to wait)
      while (!this.readPaused && !this.flowPaused && this.creditQueue === null && (this.state as State) !== State.Closed && r.nextFrame()) {
        this.handleFrame(r.frameType, r.frameChannel, r.frameBuf, r.frameStart, r.frameEnd, r.frameOwned);
      }
    } catch (err) {
      this.handleError(err, 0);
    } finally {
      this.processing = false;
    }
    if (this.pendingConfirms.size !== 0) this.flushConfirms();
  }

  private readProtocolHeader(): boolean {
    const header = this.reader.readProtocolHeader();
    if (header === null) return false;
    if (!speaks091(header)) {
      // spec: a server that does not accept the protocol header replies with the one it supports and closes
      this.logger.info({ header: header.toString('latin1') }, 'bad protocol header');
      this.out.write(PROTOCOL_HEADER);
      this.state = State.Closed;
      this.socket.end();
      return false;
    }
    this.state = State.AwaitStartOk;
    this.send(0, {
      id: MethodId.ConnectionStart,
      args: {
        versionMajor: 0,
        versionMinor: 9,
        serverProperties: this.broker.serverProperties,
        mechanisms: Buffer.from(saslMechanisms(this.peer).join(' ')),
        locales: Buffer.from('en_US'),
      },
    });
    return true;
  }

  /**
   * One frame; its payload is buf[start, end) (a socket chunk: nothing is copied or
   * allocated on the publish path unless a handler needs to keep bytes). `owned`: buf is
   * a copy of just this payload, which a body may adopt as is.
   */
  private handleFrame(type: number, channel: number, buf: Buffer, start: number, end: number, owned = false): void {
    if (this.state === State.Closing) {
      // spec: after sending connection.close, discard everything but close / close-ok
      if (type === FrameType.Method && channel === 0) {
        const method = decodeMethod(buf.subarray(start, end));
        if (method.id === MethodId.ConnectionCloseOk) this.finishClose();
        else if (method.id === MethodId.ConnectionClose) {
          this.send(0, { id: MethodId.ConnectionCloseOk, args: {} });
          this.finishClose();
        }
      }
      return;
    }
    if (type === FrameType.Heartbeat) {
      if (channel !== 0) {
        throw new AmqpConnectionError(ReplyCode.UnexpectedFrame, `type 8, all octets = ${erlangBinary(buf.subarray(start, end))}`);
      }
      return;
    }
    if (channel === 0) {
      if (type !== FrameType.Method) {
        throw new AmqpConnectionError(ReplyCode.UnexpectedFrame, `unexpected content frame (type ${type}) on channel 0`);
      }
      this.handleConnectionMethod(decodeMethod(this.keepable(buf, start, end, owned)));
      return;
    }
    if (this.state !== State.Open) {
      throw new AmqpConnectionError(ReplyCode.ChannelError, `frame on channel ${channel} before the connection is open`);
    }
    let ch = this.channels.get(channel);
    if (ch !== undefined && ch.paused) {
      // the channel waits for a durable -ok: keep its frames, in order, for later
      ch.held.push({ type, channel, payload: this.keepable(buf, start, end, owned) });
      return;
    }
    if (type === FrameType.Method) {
      if (ch === undefined) {
        const method = decodeMethod(buf.subarray(start, end));
        if (method.id !== MethodId.ChannelOpen) {
          throw new AmqpConnectionError(ReplyCode.ChannelError, "expected 'channel.open'", method.id >>> 16, method.id & 0xffff);
        }
        ch = this.openChannel(channel);
        return;
      }
      // the hot methods are decoded into reused objects (no allocation per message);
      // anything malformed falls through to the generic decoder, which names the error
      const method = decodeHotMethod(ch.hotMethods, buf, start, end) ?? decodeMethod(this.keepable(buf, start, end, owned));
      this.dispatchChannelMethod(ch, method);
      return;
    }
    if (ch === undefined) {
      throw new AmqpConnectionError(ReplyCode.ChannelError, `content frame on channel ${channel}, which is not open`);
    }
    try {
      if (type === FrameType.Header) ch.handleContentHeader(buf, start, end);
      else if (type === FrameType.Body) ch.handleContentBody(buf, start, end, owned);
      else throw new AmqpConnectionError(ReplyCode.FrameError, `unknown frame type ${type}`);
    } catch (err) {
      this.handleError(err, channel);
    }
  }

  private handleHeldFrame(frame: Frame): void {
    const p = frame.payload;
    this.handleFrame(frame.type, frame.channel, p, 0, p.length);
  }

  private dispatchChannelMethod(ch: Channel, method: Method): void {
    try {
      ch.handleMethod(method);
    } catch (err) {
      if (err instanceof AmqpChannelError && err.classId === 0) {
        const e = new AmqpChannelError(err.replyCode, err.replyText, method.id >>> 16, method.id & 0xffff);
        this.handleError(e, ch.id);
      } else if (err instanceof AmqpConnectionError && err.classId === 0) {
        throw new AmqpConnectionError(err.replyCode, err.replyText, method.id >>> 16, method.id & 0xffff);
      } else {
        this.handleError(err, ch.id);
      }
    }
  }

  private openChannel(id: number): Channel {
    // RabbitMQ counts open channels against channel_max
    if (this.channels.size >= this.channelMax) {
      throw new AmqpConnectionError(
        ReplyCode.NotAllowed,
        `number of channels opened (${this.channels.size}) has reached the negotiated channel_max (${this.channelMax})`,
      );
    }
    const ch = new Channel(id, this);
    this.channels.set(id, ch);
    this.broker.channelOpened(ch);
    this.send(id, { id: MethodId.ChannelOpenOk, args: { reserved1: Buffer.alloc(0) } });
    return ch;
  }

  // ---- resource alarms (RabbitMQ: publishers are blocked, consumers keep going) ----------------

  /** A channel saw basic.publish: under an alarm, this connection stops being read. */
  notePublish(): void {
    this.publisher = true;
    const reason = this.broker.blockedReason;
    if (reason !== null && !this.readPaused) this.block(reason);
  }

  /** The broker's alarm state changed. */
  alarmChanged(reason: string | null): void {
    if (reason !== null) {
      if (this.publisher && this.isOpen) this.block(reason);
    } else if (this.readPaused || this.blockedNotified) {
      this.unblock();
    }
  }

  private block(reason: string): void {
    if (!this.blockedNotified && this.connectionBlockedNotify) {
      this.send(0, { id: MethodId.ConnectionBlocked, args: { reason } });
    }
    this.blockedNotified = true;
    this.readPaused = true;
    this.socket.pause();
    this.logger.info({ reason }, 'publishing connection blocked by resource alarm');
  }

  private unblock(): void {
    if (this.blockedNotified && this.connectionBlockedNotify && this.isOpen) {
      this.send(0, { id: MethodId.ConnectionUnblocked, args: {} });
    }
    this.blockedNotified = false;
    if (!this.readPaused) return;
    this.readPaused = false;
    this.lastReceivedAt = Date.now();
    if (this.readsHeld) return; // flow control resumes
    this.socket.resume();
    // frames read before the pause are still buffered
    this.processFrames();
  }

  // ---- flow control (RabbitMQ's credit flow, at the granularity of the store) ------------------

  /**
   * A publish of this connection wrote to a store that is behind (Core.flow): stop reading
   * after the current frame until it catches up. The store drains by itself, so a connection
   * that also consumes is never deadlocked: its acks wait in the socket for milliseconds.
   */
  enterFlow(bytes: number): void {
    this.flowBytes += bytes;
    if (this.flowBytes < FLOW_ALLOWANCE) return;
    this.flowBytes = 0;
    if (this.flowPaused || this.state === State.Closed) return;
    this.flowPaused = true;
    this.socket.pause();
    this.broker.core.flow.waitForRelief(this);
  }

  /** FlowWaiter: the store caught up (a store callback: nothing may escape). */
  flowRelieved(): void {
    try {
      if (!this.flowPaused) return;
      this.flowPaused = false;
      this.flowBytes = 0;
      if (this.state === State.Closed) return;
      this.lastReceivedAt = Date.now();
      if (this.readsHeld) return; // the alarm still blocks it (unblock resumes), or a queue (creditGranted)
      this.socket.resume();
      // frames read before the pause are still buffered
      this.processFrames();
    } catch (err) {
      this.internalFailure(err, 'flow control');
    }
  }

  /**
   * A publish used up a queue's publish credit (Queue.creditExhausted): stop reading after
   * the current frame until that queue's next delivery pass, which is already scheduled and
   * runs within this turn of the event loop. So a block never outlasts one turn: acks,
   * nacks and cancels behind the publishes wait for no consumer, only for that pass.
   */
  enterQueueFlow(queue: Queue): void {
    if (this.creditQueue !== null || this.state === State.Closed) return;
    this.creditQueue = queue;
    this.socket.pause();
    queue.waitForCredit(this);
  }

  /** CreditWaiter: the queue's pass started; reading resumes once the pass is over (nextTick). */
  creditGranted(queue: Queue): void {
    if (this.creditQueue !== queue) return;
    process.nextTick(creditResume, this);
  }

  resumeAfterCredit(): void {
    if (this.creditQueue === null) return;
    this.creditQueue = null;
    if (this.state === State.Closed) return;
    this.lastReceivedAt = Date.now();
    if (this.readsHeld) return; // the store or an alarm still holds it
    this.socket.resume();
    // frames read before the pause are still buffered
    if (!this.processing) this.processFrames();
  }

  /** A deferred reply went out: process the frames the channel held meanwhile. */
  resumeChannel(ch: Channel): void {
    try {
      while (!ch.paused && ch.held.length !== 0 && this.channels.get(ch.id) === ch) this.handleHeldFrame(ch.held.shift()!);
    } catch (err) {
      this.handleError(err, ch.id);
    }
    if (this.pendingConfirms.size !== 0) this.flushConfirms();
  }

  /** A reply that waited for the store goes out (store callback: nothing may escape). */
  /** A channel finished closing (close-ok sent or received): its number may be reused. */
  channelClosed(ch: Channel): void {
    if (this.channels.get(ch.id) === ch) this.channels.delete(ch.id);
    this.pendingConfirms.delete(ch);
  }

  // ---- channel 0 ----------------------------------------------------------------------------

  private handleConnectionMethod(method: Method): void {
    switch (this.state) {
      case State.AwaitStartOk:
        if (method.id !== MethodId.ConnectionStartOk) break;
        this.handleConnectionStartOk(method.args);
        return;
      case State.AwaitTuneOk:
        if (method.id !== MethodId.ConnectionTuneOk) break;
        this.handleConnectionTuneOk(method.args);
        return;
      case State.AwaitOpen:
        if (method.id !== MethodId.ConnectionOpen) break;
        this.handleConnectionOpen(method.args);
        return;
      case State.Open:
        switch (method.id) {
          case MethodId.ConnectionClose:
            this.handleConnectionClose();
            return;
          case MethodId.ConnectionCloseOk:
            return;
          case MethodId.ConnectionBlocked:
          case MethodId.ConnectionUnblocked:
            return;
          case MethodId.ConnectionUpdateSecret:
            // RabbitMQ 3.8+: refused → 530, closing the connection
            updateSecret(this.broker.core, this.user!, this.mechanism, method.args.newSecret);
            this.logger.info({ user: this.username, reason: method.args.reason }, 'secret updated');
            this.send(0, { id: MethodId.ConnectionUpdateSecretOk, args: {} });
            return;
        }
        break;
    }
    if (method.id === MethodId.ConnectionClose) {
      this.handleConnectionClose();
      return;
    }
    if (this.state === State.Open) {
      throw new AmqpConnectionError(
        ReplyCode.ChannelError,
        'unexpected method in connection state running',
        method.id >>> 16,
        method.id & 0xffff,
      );
    }
    throw new AmqpConnectionError(
      ReplyCode.CommandInvalid,
      `unexpected method '${methodName(method.id)}' during the handshake`,
      method.id >>> 16,
      method.id & 0xffff,
    );
  }

  private handleConnectionStartOk(args: Extract<Method, { id: typeof MethodId.ConnectionStartOk }>['args']): void {
    this.clientProperties = args.clientProperties;
    const caps = args.clientProperties.get('capabilities');
    if (caps !== undefined && caps.type === 'F') {
      this.consumerCancelNotify = fieldValueToJs(caps.value.get('consumer_cancel_notify') ?? { type: 'V', value: null }) === true;
      this.authenticationFailureClose =
        fieldValueToJs(caps.value.get('authentication_failure_close') ?? { type: 'V', value: null }) === true;
      this.connectionBlockedNotify = fieldValueToJs(caps.value.get('connection.blocked') ?? { type: 'V', value: null }) === true;
    }
    const mechanism = args.mechanism;
    const result = authenticate(this.broker.core, mechanism, args.response, this.peer);
    if (!result.ok) {
      this.logger.warn({ user: result.username, mechanism, reason: result.reason }, 'authentication failed');
      const text = `Login was refused using authentication mechanism ${mechanism}. For details see the broker logfile.`;
      if (this.authenticationFailureClose) {
        throw new AmqpConnectionError(ReplyCode.AccessRefused, text, 10, 11);
      }
      // spec: without authentication_failure_close the server just closes the socket
      this.destroy('authentication failed');
      return;
    }
    this.user = result.user;
    this.username = result.user.name;
    this.mechanism = mechanism;
    this.state = State.AwaitTuneOk;
    const cfg = this.broker.config;
    this.send(0, {
      id: MethodId.ConnectionTune,
      args: { channelMax: cfg.channelMax, frameMax: cfg.frameMax, heartbeat: cfg.heartbeat },
    });
  }

  private handleConnectionTuneOk(args: Extract<Method, { id: typeof MethodId.ConnectionTuneOk }>['args']): void {
    try {
      this.negotiate(args);
    } catch (err) {
      // RabbitMQ: a bad tune-ok is refused by closing the socket (no connection.close before open)
      this.logger.warn({ reason: (err as Error).message }, 'connection.tune-ok refused');
      this.destroy((err as Error).message);
    }
  }

  private negotiate(args: Extract<Method, { id: typeof MethodId.ConnectionTuneOk }>['args']): void {
    const cfg = this.broker.config;
    // spec: 0 means "no limit" — the server's own limit then applies
    const channelMax = args.channelMax === 0 ? cfg.channelMax : args.channelMax;
    const frameMax = args.frameMax === 0 ? cfg.frameMax : args.frameMax;
    if (channelMax > cfg.channelMax) {
      throw new AmqpConnectionError(
        ReplyCode.NotAllowed,
        `negotiated channel_max = ${channelMax} is higher than the maximum allowed value (${cfg.channelMax})`,
        10,
        31,
      );
    }
    if (frameMax > cfg.frameMax) {
      throw new AmqpConnectionError(
        ReplyCode.NotAllowed,
        `negotiated frame_max = ${frameMax} is higher than the maximum allowed value (${cfg.frameMax})`,
        10,
        31,
      );
    }
    if (frameMax < FRAME_MIN_SIZE) {
      throw new AmqpConnectionError(ReplyCode.NotAllowed, `frame_max=${frameMax} < ${FRAME_MIN_SIZE} min size`, 10, 31);
    }
    this.channelMax = channelMax;
    this.frameMax = frameMax;
    this.reader.frameMax = frameMax;
    this.heartbeat = args.heartbeat;
    this.state = State.AwaitOpen;
    if (this.heartbeat > 0) {
      // send when idle every half interval; drop the peer after two silent intervals
      this.heartbeatTimer = setInterval(heartbeatTick, (this.heartbeat * 1000) / 2, this);
      this.heartbeatTimer.unref();
    }
  }

  private handleConnectionOpen(args: Extract<Method, { id: typeof MethodId.ConnectionOpen }>['args']): void {
    this.session = openSession(this.broker.core, this.user!, args.virtualHost, this);
    const vhost = this.session.vhost;
    this.state = State.Open;
    if (this.closeTimer !== null) {
      clearTimeout(this.closeTimer);
      this.closeTimer = null;
    }
    this.send(0, { id: MethodId.ConnectionOpenOk, args: { reserved1: '' } });
    const client = this.clientProperties.get('product');
    this.logger.info(
      { user: this.username, vhost: vhost.name, client: client === undefined ? undefined : fieldValueToJs(client) },
      'connection opened',
    );
  }

  /** Client-initiated close: release everything, answer close-ok, end the socket. */
  private handleConnectionClose(): void {
    this.closeReason = 'client closed the connection';
    this.releaseChannels();
    this.send(0, { id: MethodId.ConnectionCloseOk, args: {} });
    this.finishClose();
  }

  // ---- errors and closing -------------------------------------------------------------------

  /** Turns a protocol error into channel.close or connection.close; anything else is a 541. */
  handleError(err: unknown, channel: number): void {
    if (err instanceof AmqpChannelError) {
      const ch = this.channels.get(channel);
      if (ch !== undefined) {
        ch.fail(err);
        return;
      }
      err = new AmqpConnectionError(err.replyCode, err.replyText, err.classId, err.methodId);
    }
    if (err instanceof AmqpConnectionError) {
      this.closeWithError(err.replyCode, err.replyText, err.classId, err.methodId);
      return;
    }
    this.logger.error({ err, channel }, 'internal error');
    this.closeWithError(ReplyCode.InternalError, 'internal error', 0, 0);
  }

  /** Server-initiated connection.close. */
  closeWithError(code: ReplyCode, text: string, classId: number, methodId: number): void {
    if (this.state === State.Closing || this.state === State.Closed) return;
    if (this.state === State.AwaitHeader) {
      this.destroy(text);
      return;
    }
    // an empty explanation is sent as the bare name, as RabbitMQ does for a crashed channel ("INTERNAL_ERROR")
    const replyText = text === '' ? replyCodeName(code) : `${replyCodeName(code)} - ${text}`;
    this.closeReason = replyText;
    this.logger.info({ code, text: replyText, classId, methodId }, 'closing connection');
    this.releaseChannels();
    this.send(0, { id: MethodId.ConnectionClose, args: { replyCode: code, replyText, classId, methodId } });
    this.state = State.Closing;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = setTimeout(closeOkTimeout, CLOSE_OK_TIMEOUT_MS, this);
    this.closeTimer.unref();
  }

  /** Broker shutdown: 320 CONNECTION_FORCED. Resolves when the socket is gone. */
  forceClose(reason: string): Promise<void> {
    if (this.state === State.Closed || this.socket.destroyed) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    try {
      if (this.state === State.Open || this.state === State.AwaitOpen || this.state === State.AwaitTuneOk) {
        this.closeWithError(ReplyCode.ConnectionForced, `broker forced connection closure with reason '${reason}'`, 0, 0);
      } else {
        this.destroy(reason);
      }
    } catch (err) {
      this.internalFailure(err, 'forced close');
    }
    return closed;
  }

  /**
   * An exception where none may escape (a timer, a socket event, a deferred callback):
   * logged at error level, and this connection — only this one — is closed with 541, or
   * dropped when even that fails.
   */
  internalFailure(err: unknown, during: string): void {
    try {
      this.logger.error({ err, during }, 'internal error (contained)');
    } catch {
      // a logger that throws: go on closing
    }
    try {
      this.closeWithError(ReplyCode.InternalError, 'internal error', 0, 0);
    } catch {
      this.closeReason ||= 'internal error';
      this.state = State.Closed;
      this.socket.destroy();
    }
  }

  private finishClose(): void {
    this.state = State.Closed;
    this.socket.end();
    // a peer that never closes its side must not keep us waiting
    const t = setTimeout(closeOkTimeout, CLOSE_OK_TIMEOUT_MS, this);
    t.unref();
  }

  destroy(reason: string): void {
    this.closeReason ||= reason;
    this.state = State.Closed;
    this.socket.destroy();
    this.cleanup();
  }

  private releaseChannels(): void {
    for (const ch of this.channels.values()) ch.release();
    this.channels.clear();
    this.pendingConfirms.clear();
  }

  private cleanup(): void {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    this.state = State.Closed;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    if (this.flowPaused) this.broker.core.flow.cancel(this);
    this.releaseChannels();
    if (this.session !== undefined) closeSession(this.session, this);
    if (this.username !== '') {
      this.logger.info({ user: this.username, vhost: this.session?.vhost.name, reason: this.closeReason || 'socket closed' }, 'connection closed');
    }
    this.broker.connectionClosed(this);
  }

  // ---- outbound -----------------------------------------------------------------------------

  send(channel: number, method: Method): void {
    this.out.write(encodeMethodFrame(channel, method));
  }

  private flushConfirms(): void {
    for (const ch of this.pendingConfirms) ch.flushConfirms();
    this.pendingConfirms.clear();
  }

  private onDrain(): void {
    this.out.writable = true;
    for (const ch of this.channels.values()) ch.resumeDeliveries();
  }

  /** Periodic check (broker tick) of every channel's oldest unacked delivery. */
  checkConsumerTimeouts(now: number): void {
    const limit = this.broker.config.consumerTimeout;
    for (const ch of this.channels.values()) if (ch.unacked.size !== 0) ch.checkConsumerTimeout(now, limit);
  }

  onHeartbeatTick(): void {
    const now = Date.now();
    // a blocked (or flow-controlled) connection is not being read: its silence is ours, not the peer's
    if (!this.readsHeld && now - this.lastReceivedAt > this.heartbeat * 2000) {
      this.logger.warn({ heartbeat: this.heartbeat }, 'missed heartbeats from client, closing connection');
      this.destroy('missed heartbeats');
      return;
    }
    if (this.out.bytesWritten === this.lastBytesWritten) this.out.write(HEARTBEAT_FRAME);
    this.lastBytesWritten = this.out.bytesWritten;
  }
}
