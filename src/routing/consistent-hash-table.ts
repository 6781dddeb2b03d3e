import { AmqpChannelError } from '../protocol/errors.js';
import type { FieldTable, FieldValue } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';
import { AbstractRoutingTable } from './abstract-routing-table.js';
import type { Binding } from './routing-table.js';
import type { RouteSink } from './route-set.js';

/** The message properties `hash-property` may name (RabbitMQ: ?PROPERTIES in the plugin). */
export type ConsistentHashProperty = 'correlation_id' | 'message_id' | 'timestamp';

/** What an x-consistent-hash exchange hashes, from its declare arguments. */
export type ConsistentHashOn =
  | { readonly kind: 'routing-key' }
  | { readonly kind: 'header'; readonly header: string }
  | { readonly kind: 'property'; readonly property: ConsistentHashProperty };

/**
 * The subset of basic properties `routeMessage` reads; BasicProperties satisfies it.
 * timestamp is AMQP 0-9-1 seconds.
 */
export interface ConsistentHashMessageProperties {
  readonly headers?: FieldTable | undefined;
  readonly correlationId?: string | undefined;
  readonly messageId?: string | undefined;
  readonly timestamp?: bigint | undefined;
}

const HASH_ON_ROUTING_KEY: ConsistentHashOn = { kind: 'routing-key' };

/** RabbitMQ: ?MAX_BINDING_WEIGHT in rabbit_exchange_type_consistent_hash. */
export const MAX_CONSISTENT_HASH_WEIGHT = 10_000;

/**
 * Validates an x-consistent-hash exchange's arguments (RabbitMQ plugin: validate/1) and
 * says what the exchange hashes. Only longstr values of hash-header / hash-property count
 * there; any other type would crash the plugin's pattern match, we refuse it with 406.
 */
export function consistentHashOptions(args: FieldTable): ConsistentHashOn {
  const header = args.get('hash-header');
  const property = args.get('hash-property');
  if (header !== undefined && header.type !== 'S') {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'hash-header must be a longstr');
  }
  if (property !== undefined && property.type !== 'S') {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'hash-property must be a longstr');
  }
  if (header !== undefined && property !== undefined) {
    throw new AmqpChannelError(
      ReplyCode.PreconditionFailed,
      'hash-header and hash-property are mutually exclusive',
    );
  }
  if (header !== undefined) return { kind: 'header', header: header.value.toString('utf8') };
  if (property !== undefined) {
    const name = property.value.toString('utf8');
    if (name === 'correlation_id' || name === 'message_id' || name === 'timestamp') {
      return { kind: 'property', property: name };
    }
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, `Unsupported property: ${name}`);
  }
  return HASH_ON_ROUTING_KEY;
}

/**
 * RabbitMQ plugin validate_binding: the binding key is the weight, an integer
 * (Erlang list_to_integer: optional sign, decimal digits) in 1..10000; anything else
 * fails the bind with 406 PRECONDITION_FAILED (binding_invalid).
 */
export function parseConsistentHashWeight(routingKey: string): number {
  if (!/^[+-]?[0-9]+$/.test(routingKey)) {
    // RabbitMQ formats the key with ~tp: <<"abc">>
    throw new AmqpChannelError(
      ReplyCode.PreconditionFailed,
      // Erlang prints an empty binary as <<>>
      `The binding key must be an integer: ${routingKey === '' ? '<<>>' : `<<"${routingKey}">>`}`,
    );
  }
  const weight = Number(routingKey);
  if (weight < 1) {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'The binding key must be greater than 0');
  }
  if (weight > MAX_CONSISTENT_HASH_WEIGHT) {
    throw new AmqpChannelError(
      ReplyCode.PreconditionFailed,
      `The binding key must not exceed ${MAX_CONSISTENT_HASH_WEIGHT}`,
    );
  }
  return weight;
}

/** A destination's place on the ring: the bindings to it, the first one's weight counts. */
interface RingMember<D> {
  readonly bindings: Binding<D>[];
  weight: number;
}

/**
 * x-consistent-hash exchange (RabbitMQ's rabbitmq_consistent_hash_exchange plugin).
 * Each bound destination owns `weight` consecutive buckets; a message's hash picks one
 * bucket by jump consistent hashing (Lamping & Veach), so each destination receives a
 * share proportional to its weight, the same key always lands on the same destination,
 * and adding a destination moves only the keys it takes over.
 *
 * RabbitMQ: a destination is on the ring once, with the weight of its first binding;
 * further bindings to it (other weights) are recorded but change nothing. Unlike the
 * plugin, which drops the destination from the ring when any one of its bindings is
 * removed, we keep it while a binding remains (re-added with that binding's weight).
 *
 * The hash is our own (murmur3-style over the key), not Erlang's phash2, so which queue
 * a given key lands on differs from RabbitMQ; only the distribution contract is kept.
 */
export class ConsistentHashTable<D> extends AbstractRoutingTable<D> {
  readonly hashOn: ConsistentHashOn;
  /** bucket number → destination, in binding order (RabbitMQ: bucket_map) */
  readonly #buckets: D[] = [];
  readonly #members = new Map<D, RingMember<D>>();

  constructor(hashOn: ConsistentHashOn = HASH_ON_ROUTING_KEY) {
    super();
    this.hashOn = hashOn;
  }

  /** true when route() cannot see what is hashed and the caller must use routeMessage() */
  get needsProperties(): boolean {
    return this.hashOn.kind === 'property';
  }

  /** number of buckets on the ring (sum of the weights of the destinations on it) */
  get bucketCount(): number {
    return this.#buckets.length;
  }

  protected override validateBinding(routingKey: string, _args: FieldTable): void {
    parseConsistentHashWeight(routingKey);
  }

  protected addRoute(binding: Binding<D>): void {
    const member = this.#members.get(binding.dest);
    if (member !== undefined) {
      member.bindings.push(binding);
      return;
    }
    const weight = parseConsistentHashWeight(binding.routingKey);
    this.#members.set(binding.dest, { bindings: [binding], weight });
    this.#appendBuckets(binding.dest, weight);
  }

  protected removeRoute(binding: Binding<D>): void {
    const member = this.#members.get(binding.dest);
    if (member === undefined) return;
    const i = member.bindings.indexOf(binding);
    if (i < 0) return;
    member.bindings.splice(i, 1);
    if (member.bindings.length === 0) {
      this.#removeBuckets(binding.dest, member.weight);
      this.#members.delete(binding.dest);
    } else if (i === 0) {
      // the binding whose weight placed it is gone: re-place with the next one's weight
      this.#removeBuckets(binding.dest, member.weight);
      member.weight = parseConsistentHashWeight(member.bindings[0]!.routingKey);
      this.#appendBuckets(binding.dest, member.weight);
    }
  }

  /**
   * Routes on the routing key or the hash-header value. With hash-property the
   * properties are not visible here and every message hashes as "absent";
   * callers check `needsProperties` and use routeMessage() instead.
   */
  route(routingKey: string, headers: FieldTable | undefined, out: RouteSink<D>): void {
    this.#route(routingKey, headers, null, out);
  }

  /** Routes on whatever the exchange hashes, properties included. */
  routeMessage(routingKey: string, properties: ConsistentHashMessageProperties, out: RouteSink<D>): void {
    this.#route(routingKey, properties.headers, properties, out);
  }

  #route(routingKey: string, headers: FieldTable | undefined, properties: ConsistentHashMessageProperties | null, out: RouteSink<D>): void {
    const n = this.#buckets.length;
    if (n === 0) return;
    let hash: number;
    const hashOn = this.hashOn;
    switch (hashOn.kind) {
      case 'routing-key':
        hash = hashString(routingKey);
        break;
      case 'header':
        hash = hashHeader(headers, hashOn.header);
        break;
      case 'property':
        hash = properties === null ? ABSENT_HASH : hashProperty(properties, hashOn.property);
        break;
    }
    out.add(this.#buckets[jumpConsistentHash(hash, n)]!);
  }

  #appendBuckets(dest: D, weight: number): void {
    const buckets = this.#buckets;
    for (let i = 0; i < weight; i++) buckets.push(dest);
  }

  /**
   * RabbitMQ ch_hash_ring_delete_fun: the destination's buckets go, later buckets move
   * down, earlier ones keep their numbers. (Keys hashed to later buckets may change
   * owner too: that is the plugin's behaviour, jump hashing only minimises moves on append.)
   */
  #removeBuckets(dest: D, weight: number): void {
    const start = this.#buckets.indexOf(dest);
    if (start >= 0) this.#buckets.splice(start, weight);
  }
}

/** hash of "nothing to hash" (RabbitMQ hashes the atom undefined: all such messages go to one bucket) */
const ABSENT_HASH = 0x5bd1e995;

function hashHeader(headers: FieldTable | undefined, name: string): number {
  const value = headers?.get(name);
  return value === undefined ? ABSENT_HASH : hashFieldValue(value);
}

function hashProperty(properties: ConsistentHashMessageProperties, property: ConsistentHashProperty): number {
  switch (property) {
    case 'correlation_id':
      return properties.correlationId === undefined ? ABSENT_HASH : hashString(properties.correlationId);
    case 'message_id':
      return properties.messageId === undefined ? ABSENT_HASH : hashString(properties.messageId);
    case 'timestamp':
      // RabbitMQ hashes integer_to_binary(seconds): the decimal text
      return properties.timestamp === undefined ? ABSENT_HASH : hashString(properties.timestamp.toString());
  }
}

/**
 * A header value's hash. Strings and byte arrays hash their bytes; integers of every
 * width hash alike (RabbitMQ's routing headers carry them as plain integers); an array
 * hashes its first element (the plugin takes hd/1 of a list; [] is a fixed term).
 */
function hashFieldValue(v: FieldValue): number {
  switch (v.type) {
    case 'S':
    case 'x':
      return hashBytes(v.value);
    case 'b':
    case 'B':
    case 's':
    case 'u':
    case 'I':
    case 'i':
      return hashInteger(v.value);
    case 'l':
    case 'T':
      return Number.isSafeInteger(Number(v.value)) ? hashInteger(Number(v.value)) : hashString(v.value.toString());
    case 'f':
    case 'd':
      return Number.isInteger(v.value) ? hashString(`f${v.value}`) : hashString(String(v.value));
    case 't':
      return v.value ? 0x3c6ef372 : 0x1b873593;
    case 'D':
      return hashString(`D${v.value.scale},${v.value.value}`);
    case 'A':
      return v.value.length === 0 ? 0x27d4eb2f : hashFieldValue(v.value[0]!);
    case 'F': {
      let h = 0x165667b1;
      for (const [key, item] of v.value) h = mix(h ^ hashString(key), hashFieldValue(item));
      return fmix32(h);
    }
    case 'V':
      return ABSENT_HASH;
  }
}

// --- murmur3 (x86, 32-bit) building blocks, computed without allocation ---

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const SEED = 0x9747b28c;

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mix(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** murmur3 over the string's UTF-16 code units, two per block (no encoding, no allocation) */
export function hashString(s: string): number {
  const n = s.length;
  let h = SEED;
  let i = 0;
  for (; i + 1 < n; i += 2) h = mix(h, s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
  if (i < n) h ^= mixK(s.charCodeAt(i));
  return fmix32(h ^ (n * 2));
}

function hashBytes(b: Buffer): number {
  const n = b.length;
  let h = SEED;
  let i = 0;
  for (; i + 3 < n; i += 4) h = mix(h, b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
  // tail: the last 1–3 bytes, little-endian, as murmur3 does
  if (i < n) {
    let k = 0;
    for (let shift = 0; i < n; i++, shift += 8) k |= b[i]! << shift;
    h ^= mixK(k);
  }
  return fmix32(h ^ n);
}

function hashInteger(n: number): number {
  // low and high 32 bits of a safe integer
  const lo = n | 0;
  const hi = Math.floor(n / 4294967296) | 0;
  return fmix32(mix(mix(0x2545f491, lo), hi) ^ 8);
}

/**
 * Jump consistent hash (Lamping & Veach 2014), driven by a 32-bit PRNG seeded with the
 * key's hash as the plugin drives it with rand seeded by the key. Returns a bucket in
 * [0, buckets): uniform over buckets, and growing the bucket count by one moves only
 * 1/(n+1) of the keys, all to the new bucket.
 */
export function jumpConsistentHash(hash: number, buckets: number): number {
  if (buckets <= 1) return 0;
  let state = hash >>> 0;
  let b = 0;
  let j = 0;
  while (j < buckets) {
    b = j;
    // mulberry32 step: state advances by a Weyl constant, output is well mixed
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    t = (t ^ (t >>> 14)) >>> 0;
    // r uniform in (0, 1]
    const r = ((t >>> 8) + 1) / 16777216;
    j = Math.floor((b + 1) / r);
  }
  return b;
}
