// The fuzzer behind test/fuzz/malformed-input.test.ts and `npm run fuzz` (bench). Two kinds
// of seeded session are run against a broker over TCP:
//
//  - damaged: a valid publishing and consuming session, then one to three damages to its
//    bytes (flipped bytes, wrong sizes, frames moved to other channels or types, dropped or
//    repeated frames, a cut stream). Any answer is fine except an internal error.
//  - structured: messages whose content headers have random structure (random property
//    sets, headers tables of random shape and every field type), some with one defect
//    built in on purpose (an unknown tag, a length past its container, a cut or a leftover
//    byte, nesting past the limit, a delivery-mode or expiration RabbitMQ refuses). The
//    generator knows what it built, so it knows the answer: the message delivered byte for
//    byte, or RabbitMQ's exact close.
//
// A finding is anything that shows an internal error: an error-level log line, a 541 other
// than RabbitMQ's bare "INTERNAL_ERROR" (its answer to properties it cannot decode), an
// exception that escapes to the event loop, a structured session answered otherwise than
// expected, or a healthy client not served in between.
import { connect } from 'amqplib';
import { encodeBodyFrames, encodeContentHeaderFrame } from '../../src/protocol/frame-writer.js';
import { MethodId } from '../../src/protocol/generated/constants.js';
import { encodeMethodFrame } from '../../src/protocol/generated/methods.js';
import { encodeBasicProperties } from '../../src/protocol/generated/properties.js';
import { MAX_FIELD_NESTING } from '../../src/protocol/field-table.js';
import { ArgReader, FrameType, M, RawClient, decodeClose, isMethod, type RawMethod } from '../../conformance/support/raw-client.js';
import type { Close } from '../../conformance/support/closes.js';
import { seededRandom } from '../helpers/random.js';
import { ERROR_LEVEL, type LogCapture, type LogLine } from '../robustness/log-capture.js';

export interface Finding {
  readonly seed: number | null;
  readonly kind: 'error log' | '541' | 'escaped exception' | 'unexpected outcome' | 'unhealthy';
  readonly detail: string;
}

export interface FuzzOptions {
  readonly url: string;
  /** the broker's log lines (error-level ones are findings) */
  readonly log: LogCapture;
  /** seeds [first, first + sessions) */
  readonly first?: number;
  readonly sessions: number;
  /** sessions in flight at once */
  readonly concurrency?: number;
  /** a healthy client is served every this many sessions */
  readonly checkEvery?: number;
  /** exceptions that escaped to the event loop so far (the caller's process listener fills it) */
  readonly escaped?: unknown[];
  readonly onProgress?: (done: number, findings: number) => void;
}

export interface FuzzReport {
  readonly sessions: number;
  readonly findings: Finding[];
  /** how the structured sessions ended, by expected outcome */
  readonly outcomes: Record<string, number>;
}

/** The closes a connection received, in order. */
interface Closes {
  readonly connection: Close[];
  readonly channel: Close[];
}

// ------------------------------------------------------------------ damaged sessions

/** A valid session on channel 1: declare, consume, publishes of assorted shapes, acks, qos. */
function validSession(r: () => number, queue: string): Buffer[] {
  const frames: Buffer[] = [];
  const ch = 1;
  frames.push(encodeMethodFrame(ch, { id: MethodId.QueueDeclare, args: { queue, passive: false, durable: false, exclusive: true, autoDelete: true, noWait: false, arguments: new Map() } }));
  frames.push(encodeMethodFrame(ch, { id: MethodId.BasicQos, args: { prefetchSize: 0, prefetchCount: 5, global: false } }));
  frames.push(encodeMethodFrame(ch, { id: MethodId.BasicConsume, args: { queue, consumerTag: 'fuzz', noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: new Map() } }));
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) {
    const props = encodeBasicProperties({
      contentType: 'text/plain',
      deliveryMode: r() < 0.5 ? 2 : 1,
      priority: Math.floor(r() * 10),
      headers: new Map([['k', { type: 'S', value: Buffer.from(`v${i}`) }], ['n', { type: 'I', value: i }]]),
      ...(r() < 0.3 ? { expiration: String(Math.floor(r() * 1000)) } : {}),
    });
    const size = [0, 1, 16, 500, 5000, 70000][Math.floor(r() * 6)]!;
    const body = Buffer.alloc(size, i);
    frames.push(encodeMethodFrame(ch, { id: MethodId.BasicPublish, args: { exchange: r() < 0.8 ? '' : 'amq.topic', routingKey: queue, mandatory: r() < 0.3, immediate: false } }));
    frames.push(encodeContentHeaderFrame(ch, 60, size, props));
    frames.push(...encodeBodyFrames(ch, body, 4096));
    if (r() < 0.5) frames.push(encodeMethodFrame(ch, { id: MethodId.BasicAck, args: { deliveryTag: i + 1, multiple: r() < 0.5 } }));
  }
  return frames;
}

/** One to three damages to the session's bytes. */
function mutate(r: () => number, frames: Buffer[]): Buffer {
  const parts = frames.map((f) => Buffer.from(f));
  const damages = 1 + Math.floor(r() * 3);
  for (let d = 0; d < damages; d++) {
    const i = Math.floor(r() * parts.length);
    const f = parts[i]!;
    if (f.length < 8) continue; // a frame dropped by an earlier damage
    switch (Math.floor(r() * 7)) {
      case 0: // flip a byte anywhere
        f[Math.floor(r() * f.length)] ^= 1 + Math.floor(r() * 255);
        break;
      case 1: // a wrong payload size
        f.writeUInt32BE(Math.floor(r() * (f.length + 64)), 3);
        break;
      case 2: // another channel (0, an unopened one, or the max)
        f.writeUInt16BE([0, 2, 65535][Math.floor(r() * 3)]!, 1);
        break;
      case 3: // another frame type
        f[0] = [1, 2, 3, 4, 8, 0, 255][Math.floor(r() * 7)]!;
        break;
      case 4: // drop a frame
        parts.splice(i, 1, Buffer.alloc(0));
        break;
      case 5: // repeat a frame
        parts.splice(i, 0, Buffer.from(f));
        break;
      default: // damage a byte inside the payload's arguments
        if (f.length > 12) f[11 + Math.floor(r() * (f.length - 12))] = Math.floor(r() * 256);
    }
  }
  const all = Buffer.concat(parts);
  // sometimes the stream just stops somewhere
  return r() < 0.2 ? all.subarray(0, Math.floor(r() * all.length)) : all;
}

/** Reads everything the broker sends until it closes the socket, answering close-ok; returns the closes. */
async function drain(client: RawClient): Promise<Closes> {
  const closes: Closes = { connection: [], channel: [] };
  try {
    for (;;) {
      const f = await client.nextFrame();
      if (f.type !== FrameType.Method || f.payload.length < 4) continue;
      const m: RawMethod = { channel: f.channel, classId: f.payload.readUInt16BE(0), methodId: f.payload.readUInt16BE(2), args: f.payload.subarray(4) };
      if (isMethod(m, M.ConnectionClose)) {
        closes.connection.push(decodeClose(m));
        if (!client.socket.writableEnded) client.sendMethod(0, M.ConnectionCloseOk);
      } else if (isMethod(m, M.ChannelClose)) closes.channel.push(decodeClose(m));
    }
  } catch {
    // the socket closed
  }
  await client.closed;
  return closes;
}

async function damagedSession(url: string, seed: number): Promise<{ closes: Closes; port: number }> {
  const r = seededRandom(seed);
  const { client } = await RawClient.open(url);
  const port = client.localPort ?? 0;
  await client.openChannel(1);
  client.write(mutate(r, validSession(r, `fuzz-${seed}`)));
  // the broker closes a connection it finds broken; otherwise our end ends it
  client.socket.end();
  return { closes: await drain(client), port };
}

// ------------------------------------------------------------------ structured sessions

/** A field value as a tree, serialized with the positions a defect can be put at. */
type FieldNode =
  | { readonly tag: string; readonly fixed: Buffer }
  | { readonly tag: 'S' | 'x'; readonly bytes: Buffer }
  | { readonly tag: 'A'; readonly items: FieldNode[] }
  | { readonly tag: 'F'; readonly entries: [Buffer, FieldNode][] };

/** Where, in serialized properties, the type tags and the u32 lengths are (with their container's end). */
interface Positions {
  readonly tags: number[];
  readonly lengths: { at: number; valueStart: number; containerEnd: number }[];
}

const FIXED: Record<string, number> = { t: 1, b: 1, B: 1, s: 2, u: 2, I: 4, i: 4, l: 8, L: 8, f: 4, d: 8, T: 8, D: 5, V: 0 };
const TAGS = [...Object.keys(FIXED), 'S', 'x', 'A', 'F'];
/** bytes that are no field type in RabbitMQ's set */
const BAD_TAGS = [0x00, 0x01, 0x4e, 0x55, 0x5a, 0x63, 0x7f, 0xff];

function randomBytes(r: () => number, max: number): Buffer {
  const b = Buffer.alloc(Math.floor(r() * (max + 1)));
  for (let i = 0; i < b.length; i++) b[i] = r() < 0.7 ? 0x20 + Math.floor(r() * 95) : Math.floor(r() * 256);
  return b;
}

function randomBytesExact(r: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** A table key: a shortstr of any bytes (RabbitMQ does not check keys), never CC or BCC. */
function key(r: () => number): Buffer {
  let k = randomBytes(r, 10);
  if (k.toString('latin1') === 'CC' || k.toString('latin1') === 'BCC') k = Buffer.from('cc');
  return Buffer.concat([Buffer.from([k.length]), k]);
}

/** A random value; containers only above `maxDepth` (the headers table is level 1). */
function randomNode(r: () => number, depth: number, maxDepth: number): FieldNode {
  let tag = TAGS[Math.floor(r() * TAGS.length)]!;
  if ((tag === 'A' || tag === 'F') && depth >= maxDepth) tag = 'V';
  if (tag in FIXED) return { tag, fixed: randomBytesExact(r, FIXED[tag]!) };
  if (tag === 'S' || tag === 'x') return { tag, bytes: randomBytes(r, 24) };
  const n = Math.floor(r() * 4);
  if (tag === 'A') return { tag, items: Array.from({ length: n }, () => randomNode(r, depth + 1, maxDepth)) };
  return { tag: 'F', entries: Array.from({ length: n }, () => [key(r), randomNode(r, depth + 1, maxDepth)] as [Buffer, FieldNode]) };
}

/** A chain of tables `levels` deep; its root is written as the headers table (level 1). */
function chain(levels: number): FieldNode {
  let node: FieldNode = { tag: 'F', entries: [] };
  for (let i = 1; i < levels; i++) node = { tag: 'F', entries: [[Buffer.from([1, 0x6b]), node]] };
  return node;
}

function bodySize(node: FieldNode): number {
  if ('items' in node) return node.items.reduce((n, v) => n + nodeSize(v), 0);
  if ('entries' in node) return node.entries.reduce((n, [k, v]) => n + k.length + nodeSize(v), 0);
  return 0;
}

/** tag + value */
function nodeSize(node: FieldNode): number {
  if ('fixed' in node) return 1 + node.fixed.length;
  if ('bytes' in node) return 5 + node.bytes.length;
  return 5 + bodySize(node);
}

/** Writes a container's body (entries or items) at o; returns the offset after it. */
function writeBody(node: FieldNode, buf: Buffer, o: number, end: number, pos: Positions): number {
  if ('items' in node) for (const v of node.items) o = writeNode(v, buf, o, end, pos);
  if ('entries' in node) {
    for (const [k, v] of node.entries) {
      o += k.copy(buf, o);
      o = writeNode(v, buf, o, end, pos);
    }
  }
  return o;
}

/** Writes tag + value at o, inside a container that ends at containerEnd. */
function writeNode(node: FieldNode, buf: Buffer, o: number, containerEnd: number, pos: Positions): number {
  pos.tags.push(o);
  buf[o] = node.tag.charCodeAt(0);
  if ('fixed' in node) return o + 1 + node.fixed.copy(buf, o + 1);
  const len = 'bytes' in node ? node.bytes.length : bodySize(node);
  pos.lengths.push({ at: o + 1, valueStart: o + 5, containerEnd });
  buf.writeUInt32BE(len, o + 1);
  if ('bytes' in node) return o + 5 + node.bytes.copy(buf, o + 5);
  return writeBody(node, buf, o + 5, o + 5 + len, pos);
}

type Defect = 'none' | 'unknown tag' | 'length past its container' | 'cut short' | 'byte left over' | 'too deep' | 'delivery-mode' | 'expiration';

type Expected =
  | { kind: 'delivered' }
  | { kind: 'connection.close'; close: Close }
  | { kind: 'channel.close'; close: Close };

const EXPIRATIONS: [string, string][] = [
  ['12abc', `invalid expiration '12abc': {leftover_string,"abc"}`],
  ['', "invalid expiration '': no_integer"],
  [' 5', "invalid expiration ' 5': no_integer"],
  ['-5', "invalid expiration '-5': {value_negative,-5}"],
  ['400000000000', "invalid expiration '400000000000': {value_too_large,400000000000}"],
  ['1.5', `invalid expiration '1.5': {leftover_string,".5"}`],
];

const PROPS = ['content-type', 'content-encoding', 'headers', 'delivery-mode', 'priority', 'correlation-id', 'reply-to', 'expiration', 'message-id', 'timestamp', 'type', 'user-id', 'app-id', 'cluster-id'] as const;

/** Random properties, with one defect when told; the defect decides the expected answer. */
function structuredProperties(r: () => number, defect: Defect, user: string): { properties: Buffer; expected: Expected } {
  const present = new Set(PROPS.filter((p) => r() < (p === 'headers' ? 0.8 : 0.35)));
  if (defect === 'delivery-mode') present.add('delivery-mode');
  if (defect === 'expiration') present.add('expiration');
  if (defect === 'too deep' || defect === 'unknown tag' || defect === 'length past its container') present.add('headers');
  // each property's bytes; the headers table as a tree, written once the list's length is known
  let headers: FieldNode | null = null;
  const parts: (Buffer | null)[] = [];
  let flags = 0;
  for (const p of PROPS) {
    if (!present.has(p)) continue;
    flags |= 1 << (15 - PROPS.indexOf(p));
    switch (p) {
      case 'headers': {
        const maxDepth = r() < 0.05 ? MAX_FIELD_NESTING : 1 + Math.floor(r() * 4);
        const n = Math.floor(r() * 6) + (defect === 'unknown tag' ? 1 : 0);
        headers =
          defect === 'too deep'
            ? chain(MAX_FIELD_NESTING + 1 + Math.floor(r() * 50))
            : { tag: 'F', entries: Array.from({ length: n }, () => [key(r), randomNode(r, 2, maxDepth)] as [Buffer, FieldNode]) };
        parts.push(null);
        break;
      }
      case 'delivery-mode':
        parts.push(Buffer.from([defect === 'delivery-mode' ? [0, 3, 7, 255][Math.floor(r() * 4)]! : 1 + Math.floor(r() * 2)]));
        break;
      case 'priority':
        parts.push(Buffer.from([Math.floor(r() * 256)]));
        break;
      case 'timestamp':
        parts.push(randomBytesExact(r, 8));
        break;
      case 'expiration': {
        const e = defect === 'expiration' ? EXPIRATIONS[Math.floor(r() * EXPIRATIONS.length)]![0] : String(3_600_000 + Math.floor(r() * 1000));
        parts.push(shortstr(Buffer.from(e)));
        break;
      }
      case 'user-id':
        parts.push(shortstr(Buffer.from(user)));
        break;
      case 'reply-to': {
        const b = randomBytes(r, 20);
        parts.push(shortstr(b.toString('latin1') === 'amq.rabbitmq.reply-to' ? Buffer.from('x') : b));
        break;
      }
      default:
        parts.push(shortstr(randomBytes(r, 30)));
    }
  }
  const headersSize = headers === null ? 0 : 4 + bodySize(headers);
  const total = 2 + headersSize + parts.reduce((n, b) => n + (b === null ? 0 : b.length), 0);
  let bytes = Buffer.alloc(total);
  // bits 1 and 0 are ignored by RabbitMQ: set them now and then
  bytes.writeUInt16BE(flags | (r() < 0.1 ? Math.floor(r() * 4) : 0), 0);
  const pos: Positions = { tags: [], lengths: [] };
  let o = 2;
  for (const part of parts) {
    if (part !== null) {
      o += part.copy(bytes, o);
      continue;
    }
    const len = bodySize(headers!);
    pos.lengths.push({ at: o, valueStart: o + 4, containerEnd: total });
    bytes.writeUInt32BE(len, o);
    o = writeBody(headers!, bytes, o + 4, o + 4 + len, pos);
  }

  const malformed: Expected = { kind: 'connection.close', close: { code: 541, text: 'INTERNAL_ERROR', method: [0, 0] } };
  const refused = (text: string): Expected => ({ kind: 'channel.close', close: { code: 406, text: `PRECONDITION_FAILED - ${text}`, method: [60, 40] } });
  let expected: Expected = { kind: 'delivered' };
  switch (defect) {
    case 'unknown tag':
      bytes[pos.tags[Math.floor(r() * pos.tags.length)]!] = BAD_TAGS[Math.floor(r() * BAD_TAGS.length)]!;
      expected = malformed;
      break;
    case 'length past its container': {
      const l = pos.lengths[Math.floor(r() * pos.lengths.length)]!;
      bytes.writeUInt32BE(l.containerEnd - l.valueStart + 1 + Math.floor(r() * 1000), l.at);
      expected = malformed;
      break;
    }
    case 'cut short':
      bytes = bytes.subarray(0, Math.floor(r() * bytes.length));
      expected = malformed;
      break;
    case 'byte left over':
      bytes = Buffer.concat([bytes, randomBytesExact(r, 1 + Math.floor(r() * 3))]);
      expected = malformed;
      break;
    case 'too deep':
      expected = refused(`invalid message: field tables nested deeper than ${MAX_FIELD_NESTING} levels in the properties`);
      break;
    case 'delivery-mode':
      // RabbitMQ checks the expiration (valid here) first, then delivery-mode
      expected = refused(`invalid message: {delivery_mode_unknown,${bytes[offsetOf(bytes, PROPS.indexOf('delivery-mode'))]!}}`);
      break;
    case 'expiration': {
      const at = offsetOf(bytes, PROPS.indexOf('expiration'));
      const e = bytes.toString('latin1', at + 1, at + 1 + bytes[at]!);
      expected = refused(EXPIRATIONS.find(([v]) => v === e)![1]);
      break;
    }
    default:
  }
  return { properties: bytes, expected };
}

function shortstr(b: Buffer): Buffer {
  return Buffer.concat([Buffer.from([b.length]), b]);
}

/** Offset of property number `index`'s value in a well-formed property list. */
function offsetOf(bytes: Buffer, index: number): number {
  const flags = bytes.readUInt16BE(0);
  let o = 2;
  for (let i = 0; i < index; i++) {
    if ((flags & (1 << (15 - i))) === 0) continue;
    const p = PROPS[i]!;
    if (p === 'headers') o += 4 + bytes.readUInt32BE(o);
    else if (p === 'delivery-mode' || p === 'priority') o += 1;
    else if (p === 'timestamp') o += 8;
    else o += 1 + bytes[o]!;
  }
  return o;
}

const DEFECTS: Defect[] = ['unknown tag', 'length past its container', 'cut short', 'byte left over', 'too deep', 'delivery-mode', 'expiration'];

/**
 * Publishes 1–4 messages with random content headers on channel 1 and gets each back; the
 * last one may carry a defect. Returns a description of the first answer that differs
 * from the expected one (null when all matched), and the expected outcome's name.
 */
async function structuredSession(url: string, seed: number): Promise<{ mismatch: string | null; outcome: string; closes: Closes; port: number }> {
  const r = seededRandom(seed);
  const { client } = await RawClient.open(url);
  const port = client.localPort ?? 0;
  const closes: Closes = { connection: [], channel: [] };
  let outcome = 'delivered';
  try {
    await client.openChannel(1);
    client.sendMethod(1, M.QueueDeclare, encodeDeclare());
    const queue = new ArgReader((await client.expectMethod(M.QueueDeclareOk)).args).shortstr();
    const n = 1 + Math.floor(r() * 4);
    for (let i = 0; i < n; i++) {
      const defect: Defect = i === n - 1 && r() < 0.5 ? DEFECTS[Math.floor(r() * DEFECTS.length)]! : 'none';
      const { properties, expected } = structuredProperties(r, defect, 'guest');
      const body = randomBytesExact(r, [0, 1, 100, 5000][Math.floor(r() * 4)]!);
      const header = Buffer.concat([Buffer.from([2, 0, 1]), u32(12 + properties.length), Buffer.from([0, 60, 0, 0]), u64(body.length), properties, Buffer.from([0xce])]);
      client.write(Buffer.concat([
        encodeMethodFrame(1, { id: MethodId.BasicPublish, args: { exchange: '', routingKey: queue, mandatory: false, immediate: false } }),
        header,
        ...encodeBodyFrames(1, body, 131072),
        encodeMethodFrame(1, { id: MethodId.BasicGet, args: { queue, noAck: true } }),
      ]));
      outcome = expected.kind === 'delivered' ? 'delivered' : `${expected.kind} ${expected.close.code} (${defect})`;
      const m = await client.nextMethod();
      const got = await answerOf(client, m, closes);
      if (expected.kind === 'delivered') {
        if (got.kind !== 'delivered') return { mismatch: `message ${i} (${defect}) ${short(properties)}: expected delivery, got ${JSON.stringify(got)}`, outcome, closes, port };
        if (!got.properties.equals(properties) || !got.body.equals(body)) return { mismatch: `message ${i}: delivered properties or body differ`, outcome, closes, port };
        continue;
      }
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        const answer = got.kind === 'delivered' ? `a delivery of ${short(got.properties)}` : JSON.stringify(got);
        return { mismatch: `message ${i} (${defect}) ${short(properties)}: expected ${JSON.stringify(expected)}, got ${answer}`, outcome, closes, port };
      }
      break; // the channel or connection is closed
    }
    return { mismatch: null, outcome, closes, port };
  } finally {
    client.destroy();
    await client.closed;
  }
}

type Answer = { kind: 'delivered'; properties: Buffer; body: Buffer } | { kind: 'connection.close' | 'channel.close'; close: Close } | { kind: 'other'; method: string };

async function answerOf(client: RawClient, m: RawMethod, closes: Closes): Promise<Answer> {
  if (isMethod(m, M.ConnectionClose)) {
    const close = decodeClose(m);
    closes.connection.push(close);
    client.sendMethod(0, M.ConnectionCloseOk);
    return { kind: 'connection.close', close };
  }
  if (isMethod(m, M.ChannelClose)) {
    const close = decodeClose(m);
    closes.channel.push(close);
    client.sendMethod(1, M.ChannelCloseOk);
    return { kind: 'channel.close', close };
  }
  if (!isMethod(m, M.BasicGetOk)) return { kind: 'other', method: `${m.classId}.${m.methodId}` };
  const header = await client.nextFrame();
  const size = Number(header.payload.readBigUInt64BE(4));
  const parts: Buffer[] = [];
  for (let got = 0; got < size; ) {
    const f = await client.nextFrame();
    parts.push(Buffer.from(f.payload));
    got += f.payload.length;
  }
  return { kind: 'delivered', properties: Buffer.from(header.payload.subarray(12)), body: Buffer.concat(parts) };
}

/** hex of the first bytes (a finding names its seed: the whole case can be regenerated from it) */
function short(b: Buffer): string {
  return b.length <= 48 ? b.toString('hex') : `${b.subarray(0, 48).toString('hex')}… (${b.length} bytes)`;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
function u64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
}
function encodeDeclare(): Buffer {
  const frame = encodeMethodFrame(1, { id: MethodId.QueueDeclare, args: { queue: '', passive: false, durable: false, exclusive: true, autoDelete: false, noWait: false, arguments: new Map() } });
  return frame.subarray(11, frame.length - 1);
}

// ------------------------------------------------------------------ the run

/** A fresh amqplib client declares, publishes, and gets its message back. */
async function healthy(url: string): Promise<string | null> {
  try {
    const conn = await connect(url);
    conn.on('error', () => {});
    try {
      const ch = await conn.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from('still here'), { persistent: true });
      let msg = await ch.get(queue, { noAck: true });
      while (msg === false) msg = await ch.get(queue, { noAck: true }); // the publish may still be in flight
      return msg.content.toString() === 'still here' ? null : 'wrong body';
    } finally {
      await conn.close();
    }
  } catch (err) {
    return (err as Error).message;
  }
}

/** 541s that are not RabbitMQ's bare answer to undecodable properties. */
function internalErrorCloses(closes: Closes): Close[] {
  return [...closes.connection, ...closes.channel].filter((c) => c.code === 541 && c.text !== 'INTERNAL_ERROR');
}

/** Runs `sessions` seeded sessions (even seeds damaged, odd seeds structured) and reports what went wrong. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const { url, log, sessions } = options;
  const first = options.first ?? 1;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const checkEvery = options.checkEvery ?? 100;
  const findings: Finding[] = [];
  const outcomes: Record<string, number> = {};
  const portToSeed = new Map<number, number>();
  const logsSeen = log.lines.length;
  const escapedBefore = options.escaped?.length ?? 0;

  let next = first;
  let done = 0;
  const runOne = async (seed: number): Promise<void> => {
    try {
      if (seed % 2 === 0) {
        const { closes, port } = await damagedSession(url, seed);
        portToSeed.set(port, seed);
        for (const c of internalErrorCloses(closes)) findings.push({ seed, kind: '541', detail: JSON.stringify(c) });
      } else {
        const s = await structuredSession(url, seed);
        portToSeed.set(s.port, seed);
        outcomes[s.outcome] = (outcomes[s.outcome] ?? 0) + 1;
        for (const c of internalErrorCloses(s.closes)) findings.push({ seed, kind: '541', detail: JSON.stringify(c) });
        if (s.mismatch !== null) findings.push({ seed, kind: 'unexpected outcome', detail: s.mismatch });
      }
    } catch (err) {
      findings.push({ seed, kind: 'unexpected outcome', detail: `session failed: ${(err as Error).message}` });
    }
    done++;
    if (done % checkEvery === 0) {
      const unhealthy = await healthy(url);
      if (unhealthy !== null) findings.push({ seed, kind: 'unhealthy', detail: unhealthy });
      options.onProgress?.(done, findings.length);
    }
  };
  const worker = async (): Promise<void> => {
    while (next < first + sessions) await runOne(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const unhealthy = await healthy(url);
  if (unhealthy !== null) findings.push({ seed: null, kind: 'unhealthy', detail: unhealthy });

  for (const line of log.lines.slice(logsSeen)) {
    if (line.level < ERROR_LEVEL) continue;
    findings.push({ seed: seedOfLine(line, portToSeed), kind: 'error log', detail: JSON.stringify(line).slice(0, 600) });
  }
  for (const e of (options.escaped ?? []).slice(escapedBefore)) {
    findings.push({ seed: null, kind: 'escaped exception', detail: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
  return { sessions, findings, outcomes };
}

/** The session a log line belongs to: by the peer port of its connection, or the seed in a queue name. */
function seedOfLine(line: LogLine, portToSeed: Map<number, number>): number | null {
  const peer = typeof line.peer === 'string' ? Number(line.peer.split(':').pop()) : NaN;
  if (portToSeed.has(peer)) return portToSeed.get(peer)!;
  const q = typeof line.queue === 'string' ? /^fuzz-(\d+)$/.exec(line.queue) : null;
  return q === null ? null : Number(q[1]);
}
