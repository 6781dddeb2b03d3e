import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Channel } from '../connection/channel.js';
import type { Connection } from '../connection/connection.js';
import type { FieldTable, FieldValue } from '../protocol/field-types.js';
import type { Consumer } from '../queue/consumer.js';
import type { Queue } from '../queue/queue.js';
import { ChannelCounters, ExchangeCounters, QueueCounters, type RateState } from '../stats/counters.js';
import type { Exchange } from '../vhost/exchange.js';
import type { Vhost } from '../vhost/vhost.js';
import type { BrokerView } from '../monitoring/broker-view.js';
import type { Totals } from '../monitoring/sampler.js';
import { channelName, connectionName } from '../monitoring/names.js';

export { channelName, connectionName };

/**
 * The broker's model in the JSON shapes of RabbitMQ's management API (same field names,
 * same nesting), so that tools written for RabbitMQ read Warren unmodified. Only what
 * Warren knows is reported; RabbitMQ's Erlang-process fields (reductions,
 * garbage_collection, backing_queue_status) are left out (see docs/differences.md).
 */

type Json = Record<string, unknown>;

// ---- values -----------------------------------------------------------------------------------

/** A field value as RabbitMQ's API shows it (strings, numbers, booleans, lists, objects). */
export function fieldValueJson(v: FieldValue): unknown {
  switch (v.type) {
    case 'S':
    case 'x':
      return v.value.toString('utf8');
    case 'A':
      return v.value.map(fieldValueJson);
    case 'F':
      return fieldTableJson(v.value);
    case 'D':
      return v.value.value / 10 ** v.value.scale;
    case 'l':
    case 'T':
      return Number(v.value);
    case 'V':
      return null;
    default:
      return v.value;
  }
}

export function fieldTableJson(t: FieldTable): Json {
  const out: Json = {};
  for (const [k, v] of t) out[k] = fieldValueJson(v);
  return out;
}

/** `<name>_details: {rate}` beside each counter. */
function withDetails(out: Json, name: string, value: number, rate: number): void {
  out[name] = value;
  out[`${name}_details`] = { rate: round(rate) };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function rateAt(state: RateState | null, i: number): number {
  return state === null ? 0 : state.rate[i]!;
}

// ---- message_stats ----------------------------------------------------------------------------

const Q = QueueCounters.FIELDS;
const CH = ChannelCounters.FIELDS;

/** queue message_stats: publish, deliver, deliver_no_ack, get, get_no_ack, get_empty, ack, redeliver, deliver_get. */
export function queueMessageStats(s: QueueCounters): Json {
  const r = s.rates;
  const out: Json = {};
  const at = (f: (typeof Q)[number]) => rateAt(r, Q.indexOf(f));
  withDetails(out, 'ack', s.ack, at('ack'));
  withDetails(out, 'deliver', s.deliver, at('deliver'));
  withDetails(
    out,
    'deliver_get',
    s.deliver + s.deliverNoAck + s.get + s.getNoAck,
    at('deliver') + at('deliverNoAck') + at('get') + at('getNoAck'),
  );
  withDetails(out, 'deliver_no_ack', s.deliverNoAck, at('deliverNoAck'));
  withDetails(out, 'get', s.get, at('get'));
  withDetails(out, 'get_empty', s.getEmpty, at('getEmpty'));
  withDetails(out, 'get_no_ack', s.getNoAck, at('getNoAck'));
  withDetails(out, 'publish', s.publish, at('publish'));
  withDetails(out, 'redeliver', s.redeliver, at('redeliver'));
  return out;
}

/** channel, vhost and overview message_stats. */
export function channelMessageStats(s: ChannelCounters): Json {
  const r = s.rates;
  const at = (f: (typeof CH)[number]) => rateAt(r, CH.indexOf(f));
  const out: Json = {};
  withDetails(out, 'ack', s.ack, at('ack'));
  withDetails(out, 'confirm', s.confirm, at('confirm'));
  withDetails(out, 'deliver', s.deliver, at('deliver'));
  withDetails(
    out,
    'deliver_get',
    s.deliver + s.deliverNoAck + s.get + s.getNoAck,
    at('deliver') + at('deliverNoAck') + at('get') + at('getNoAck'),
  );
  withDetails(out, 'deliver_no_ack', s.deliverNoAck, at('deliverNoAck'));
  withDetails(out, 'drop_unroutable', s.dropUnroutable, at('dropUnroutable'));
  withDetails(out, 'get', s.get, at('get'));
  withDetails(out, 'get_empty', s.getEmpty, at('getEmpty'));
  withDetails(out, 'get_no_ack', s.getNoAck, at('getNoAck'));
  withDetails(out, 'publish', s.publish, at('publish'));
  withDetails(out, 'redeliver', s.redeliver, at('redeliver'));
  withDetails(out, 'return_unroutable', s.returnUnroutable, at('returnUnroutable'));
  return out;
}

export function exchangeMessageStats(s: ExchangeCounters): Json {
  const out: Json = {};
  withDetails(out, 'publish_in', s.publishIn, rateAt(s.rates, ExchangeCounters.FIELDS.indexOf('publishIn')));
  withDetails(out, 'publish_out', s.publishOut, rateAt(s.rates, ExchangeCounters.FIELDS.indexOf('publishOut')));
  return out;
}

/** messages, messages_ready, messages_unacknowledged with their rates (vhost, overview queue_totals). */
export function queueTotals(t: Totals): Json {
  const out: Json = {};
  withDetails(out, 'messages', t.ready + t.unacked, rateAt(t.queueRates, 0));
  withDetails(out, 'messages_ready', t.ready, rateAt(t.queueRates, 1));
  withDetails(out, 'messages_unacknowledged', t.unacked, rateAt(t.queueRates, 2));
  return out;
}

// ---- objects ----------------------------------------------------------------------------------

/** The policy keys in force for a queue: its policy's definition with the operator policy's keys merged in (smaller wins). */
function effectivePolicyDefinition(vhost: Vhost, name: string): Json {
  const { policy, operator } = vhost.policyOf('queue', name);
  const out: Json = { ...(policy?.definition ?? {}) };
  for (const [k, v] of Object.entries(operator?.definition ?? {})) {
    const mine = out[k];
    out[k] = typeof mine === 'number' && typeof v === 'number' ? Math.min(mine, v) : v;
  }
  return out;
}

/** Rough memory a queue holds: in-memory ready bodies plus a per-entry overhead. */
const ENTRY_OVERHEAD_BYTES = 160;

export function queueJson(view: BrokerView, vhost: Vhost, q: Queue, detailed = false): Json {
  const ready = q.messageCount;
  const unacked = q.unackedCount;
  const paged = q.pagedOutCount;
  const rates = q.stats.rates;
  const n = Q.length;
  const exclusiveConsumer = q.consumers.find((c) => c.exclusive);
  const out: Json = {
    arguments: fieldTableJson(q.options.arguments),
    auto_delete: q.options.autoDelete,
    consumers: q.consumerCount,
    durable: q.durable,
    effective_policy_definition: effectivePolicyDefinition(vhost, q.name),
    exclusive: q.exclusive,
    exclusive_consumer_tag: exclusiveConsumer?.tag ?? null,
    head_message_timestamp: null,
    memory: (q.byteSize - q.pagedOutBytes) + (ready - paged + unacked) * ENTRY_OVERHEAD_BYTES,
    message_bytes: q.byteSize,
    message_bytes_paged_out: q.pagedOutBytes,
    message_bytes_ram: q.byteSize - q.pagedOutBytes,
    message_bytes_ready: q.byteSize,
    message_stats: queueMessageStats(q.stats),
    messages_paged_out: paged,
    messages_ram: ready - paged + unacked,
    messages_ready_ram: ready - paged,
    messages_unacknowledged_ram: unacked,
    name: q.name,
    node: view.nodeName,
    operator_policy: vhost.policyOf('queue', q.name).operator?.name ?? null,
    policy: vhost.policyOf('queue', q.name).policy?.name ?? null,
    single_active_consumer_tag: q.limits.singleActiveConsumer ? (q.consumers[0]?.tag ?? null) : null,
    state: 'running',
    type: 'classic',
    vhost: vhost.name,
  };
  withDetails(out, 'messages', ready + unacked, rateAt(rates, n));
  withDetails(out, 'messages_ready', ready, rateAt(rates, n + 1));
  withDetails(out, 'messages_unacknowledged', unacked, rateAt(rates, n + 2));
  if (q.options.exclusiveOwner !== null) {
    const owner = q.options.exclusiveOwner as Connection;
    out.owner_pid_details = { name: connectionName(owner), peer_host: owner.remoteAddress ?? '', peer_port: owner.remotePort ?? 0 };
  }
  if (detailed) {
    out.consumer_details = q.consumers.map((c) => consumerJson(view, vhost, c));
    out.deliveries = [];
    out.incoming = [];
  }
  return out;
}

export function exchangeJson(vhost: Vhost, x: Exchange, detailed = false): Json {
  const out: Json = {
    arguments: fieldTableJson(x.options.arguments),
    auto_delete: x.options.autoDelete,
    durable: x.durable,
    internal: x.options.internal,
    message_stats: exchangeMessageStats(x.stats),
    name: x.name,
    policy: x.isDefault ? null : (vhost.policyOf('exchange', x.name).policy?.name ?? null),
    type: x.type,
    user_who_performed_action: 'rmq-internal',
    vhost: vhost.name,
  };
  if (detailed) {
    out.incoming = [];
    out.outgoing = [];
  }
  return out;
}

/** RabbitMQ's binding properties key: the quoted routing key, plus a hash of the arguments. */
export function propertiesKey(routingKey: string, args: FieldTable): string {
  if (routingKey === '' && args.size === 0) return '~';
  const key = quoteBinding(routingKey);
  if (args.size === 0) return key;
  return `${key}~${quoteBinding(argsHash(args))}`;
}

/** mochiweb quote_plus (unreserved bytes kept, space as +, the rest %XX) with ~ escaped too. */
export function quoteBinding(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9._-]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A short stable hash of a binding's arguments (keys sorted, values with their types). */
function argsHash(args: FieldTable): string {
  const canonical = [...args.keys()].sort().map((k) => [k, canonicalValue(args.get(k)!)]);
  return createHash('sha256').update(JSON.stringify(canonical)).digest().subarray(0, 4).toString('base64url');
}

function canonicalValue(v: FieldValue): unknown {
  if (v.type === 'F') return ['F', [...v.value].map(([k, x]) => [k, canonicalValue(x)])];
  if (v.type === 'A') return ['A', v.value.map(canonicalValue)];
  const j = fieldValueJson(v);
  return [v.type, typeof j === 'bigint' ? String(j) : j];
}

export interface BindingJson extends Json {
  source: string;
  vhost: string;
  destination: string;
  destination_type: 'queue' | 'exchange';
  routing_key: string;
  arguments: Json;
  properties_key: string;
}

/** Every binding of a vhost, the default exchange's implicit ones first (as RabbitMQ lists them). */
export function vhostBindings(vhost: Vhost): BindingJson[] {
  const out: BindingJson[] = [];
  for (const q of vhost.queues.values()) {
    out.push({
      source: '',
      vhost: vhost.name,
      destination: q.name,
      destination_type: 'queue',
      routing_key: q.name,
      arguments: {},
      properties_key: propertiesKey(q.name, new Map()),
    });
  }
  for (const x of vhost.exchanges.values()) {
    if (x.isDefault) continue;
    for (const b of x.table.bindings()) {
      out.push({
        source: x.name,
        vhost: vhost.name,
        destination: b.dest.name,
        destination_type: b.dest.kind,
        routing_key: b.routingKey,
        arguments: fieldTableJson(b.args),
        properties_key: propertiesKey(b.routingKey, b.args),
      });
    }
  }
  return out;
}

function clientProperties(c: Connection): Json {
  const out: Json = {};
  for (const [k, v] of c.clientProperties) out[k] = fieldValueJson(v);
  return out;
}

export function connectionJson(view: BrokerView, c: Connection): Json {
  const sock = c.socket as Partial<Socket>;
  const r = c.stats.rates;
  const out: Json = {
    auth_mechanism: c.authMechanism,
    channel_max: c.channelMax,
    channels: c.channels.size,
    client_properties: clientProperties(c),
    connected_at: c.connectedAt,
    frame_max: c.frameMax,
    host: sock.localAddress ?? '',
    name: connectionName(c),
    node: view.nodeName,
    peer_cert_issuer: null,
    peer_cert_subject: null,
    peer_cert_validity: null,
    peer_host: c.remoteAddress ?? '',
    peer_port: c.remotePort ?? 0,
    port: sock.localPort ?? 0,
    protocol: 'AMQP 0-9-1',
    recv_cnt: c.stats.recvCnt,
    send_cnt: c.out.sends,
    send_pend: sock.writableLength ?? 0,
    ssl: false,
    ssl_cipher: null,
    ssl_hash: null,
    ssl_key_exchange: null,
    ssl_protocol: null,
    state: c.blocked ? 'blocked' : c.flow ? 'flow' : c.isOpen ? 'running' : 'closing',
    timeout: c.heartbeat,
    type: 'network',
    user: c.username,
    user_who_performed_action: c.username,
    vhost: c.vhostName,
  };
  withDetails(out, 'recv_oct', c.stats.recvOct, rateAt(r, 0));
  withDetails(out, 'send_oct', c.out.bytesWritten, rateAt(r, 1));
  return out;
}

export function channelJson(view: BrokerView, ch: Channel): Json {
  const c = ch.conn;
  return {
    acks_uncommitted: ch.txSettlements.length,
    confirm: ch.confirmMode,
    connection_details: { name: connectionName(c), peer_host: c.remoteAddress ?? '', peer_port: c.remotePort ?? 0 },
    consumer_count: ch.consumers.size + (ch.directReplyConsumerTag !== null ? 1 : 0),
    global_prefetch_count: ch.channelPrefetch,
    message_stats: channelMessageStats(ch.stats),
    messages_unacknowledged: ch.unacked.size,
    messages_uncommitted: ch.txPublishes.length,
    messages_unconfirmed: ch.unconfirmedCount,
    name: channelName(ch),
    node: view.nodeName,
    number: ch.id,
    pending_raft_commands: 0,
    prefetch_count: ch.consumerPrefetch,
    state: ch.isOpen ? (c.blocked ? 'blocked' : c.flow ? 'flow' : 'running') : 'closing',
    transactional: ch.txMode,
    user: c.username,
    user_who_performed_action: c.username,
    vhost: c.vhostName,
  };
}

function channelDetails(view: BrokerView, ch: Channel): Json {
  const c = ch.conn;
  return {
    connection_name: connectionName(c),
    name: channelName(ch),
    node: view.nodeName,
    number: ch.id,
    peer_host: c.remoteAddress ?? '',
    peer_port: c.remotePort ?? 0,
    user: c.username,
  };
}

export function consumerJson(view: BrokerView, vhost: Vhost, c: Consumer): Json {
  const ch = c.owner as unknown as Channel;
  const q = c.queue;
  const active = !q.limits.singleActiveConsumer || q.consumers[0] === c;
  return {
    ack_required: !c.noAck,
    active,
    activity_status: active ? 'up' : 'waiting',
    arguments: fieldTableJson(c.args),
    channel_details: channelDetails(view, ch),
    consumer_tag: c.tag,
    exclusive: c.exclusive,
    prefetch_count: c.prefetchCount,
    priority: c.priority,
    queue: { name: q.name, vhost: vhost.name },
  };
}

export function vhostJson(view: BrokerView, v: Vhost): Json {
  const t = view.sampler.totalsOf(v.name);
  const out: Json = {
    cluster_state: { [view.nodeName]: 'running' },
    default_queue_type: 'undefined',
    description: v.name === '/' ? 'Default virtual host' : '',
    message_stats: channelMessageStats(t.messages),
    metadata: { description: v.name === '/' ? 'Default virtual host' : '', tags: [] },
    name: v.name,
    tags: [],
    tracing: false,
    ...queueTotals(t),
  };
  withDetails(out, 'recv_oct', t.recvOct, rateAt(t.octRates, 0));
  withDetails(out, 'send_oct', t.sendOct, rateAt(t.octRates, 1));
  return out;
}
