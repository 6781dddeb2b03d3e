import { Message } from '../message/message.js';
import type { FieldTable, FieldValue } from '../protocol/field-types.js';
import { encodeBasicProperties } from '../protocol/generated/properties.js';

/** Why a message was dead-lettered (the x-death reason). */
export type DeathReason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit';

const str = (s: string): FieldValue => ({ type: 'S', value: Buffer.from(s) });
const textOf = (v: FieldValue | undefined): string | undefined =>
  v !== undefined && (v.type === 'S' || v.type === 'x') ? v.value.toString('utf8') : undefined;

/** The routing keys a message was published with: its routing key and any CC keys (sender-selected distribution). */
export function publishedRoutingKeys(message: Message): string[] {
  const keys = [message.routingKey];
  const cc = message.headers()?.get('CC');
  if (cc !== undefined && cc.type === 'A') for (const k of cc.value) {
    const t = textOf(k);
    if (t !== undefined) keys.push(t);
  }
  return keys;
}

/**
 * The message as it leaves `queue` for its dead-letter exchange, with the x-death
 * header RabbitMQ writes (rabbit_dead_letter): the entry for (queue, reason) gets its
 * count incremented and moves first, or a new one {count, reason, queue, time,
 * exchange, routing-keys[, original-expiration]} is prepended; x-first-death-* are
 * added once. A per-message expiration is removed (recorded as original-expiration).
 */
export function deadLetteredMessage(
  message: Message,
  queue: string,
  reason: DeathReason,
  deadLetterExchange: string,
  routingKey: string,
  nowMs: number,
  /** x-dead-letter-routing-key replaces the routing keys: the CC header goes (routing-keys keeps it) */
  stripCc = false,
): Message {
  const props = { ...message.properties() };
  const headers: FieldTable = new Map(props.headers ?? []);
  const deaths = headers.get('x-death');
  const existing = deaths !== undefined && deaths.type === 'A' ? deaths.value : [];
  let updated: FieldValue | undefined;
  const others: FieldValue[] = [];
  for (const d of existing) {
    if (updated === undefined && d.type === 'F' && textOf(d.value.get('queue')) === queue && textOf(d.value.get('reason')) === reason) {
      const table: FieldTable = new Map(d.value);
      const count = table.get('count');
      const n = count !== undefined && typeof count.value === 'bigint' ? count.value : BigInt(Number(count?.value ?? 0));
      table.set('count', { type: 'l', value: n + 1n });
      updated = { type: 'F', value: sortTable(table) };
    } else {
      others.push(d);
    }
  }
  if (updated === undefined) {
    const info: FieldTable = new Map<string, FieldValue>([
      ['count', { type: 'l', value: 1n }],
      ['reason', str(reason)],
      ['queue', str(queue)],
      ['time', { type: 'T', value: BigInt(Math.floor(nowMs / 1000)) }],
      ['exchange', str(message.exchange)],
      ['routing-keys', { type: 'A', value: publishedRoutingKeys(message).map(str) }],
    ]);
    if (props.expiration !== undefined) info.set('original-expiration', str(props.expiration));
    // RabbitMQ: the very first entry keeps this order; one added to an existing array is sorted by key
    updated = { type: 'F', value: existing.length === 0 ? info : sortTable(info) };
  }
  if (existing.length === 0) {
    headers.set('x-first-death-reason', str(reason));
    headers.set('x-first-death-queue', str(queue));
    headers.set('x-first-death-exchange', str(message.exchange));
  }
  headers.set('x-death', { type: 'A', value: [updated, ...others] });
  if (stripCc) headers.delete('CC');
  // RabbitMQ leaves the headers table sorted by name after dead-lettering
  props.headers = sortTable(headers);
  delete props.expiration;
  return new Message(deadLetterExchange, routingKey, encodeBasicProperties(props), message.body);
}

function sortTable(t: FieldTable): FieldTable {
  return new Map([...t].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * rabbit_dead_letter:is_cycle — dead-lettering into `target` closes a cycle when the
 * message already died in `target`, and no death since then (up to and including that
 * one) was a rejection: such a fully automatic cycle drops the message.
 */
export function isDeadLetterCycle(message: Message, target: string): boolean {
  const deaths = message.headers()?.get('x-death');
  if (deaths === undefined || deaths.type !== 'A') return false;
  for (const d of deaths.value) {
    if (d.type !== 'F') return false;
    if (textOf(d.value.get('reason')) === 'rejected') return false;
    if (textOf(d.value.get('queue')) === target) return true;
  }
  return false;
}
