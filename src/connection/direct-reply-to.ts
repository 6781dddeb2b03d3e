import { randomBytes } from 'node:crypto';
import { AmqpChannelError } from '../protocol/errors.js';
import { encodeBasicProperties } from '../protocol/generated/properties.js';
import { ReplyCode } from '../protocol/reply-code.js';
import { Message } from '../message/message.js';
import type { Channel } from './channel.js';

/** Pseudo-queue name of RabbitMQ's direct reply-to. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/**
 * RabbitMQ's direct reply-to: a requester consumes the pseudo-queue
 * amq.rabbitmq.reply-to (no-ack) and publishes with reply_to set to it; the broker
 * rewrites reply_to into an address naming the requester's channel, and a reply
 * published to the default exchange with that routing key goes straight to it,
 * with no queue in between. A reply to a vanished requester is dropped.
 */
const PREFIX = `${DIRECT_REPLY_TO}.`;

const secrets = new WeakMap<Channel, string>();

function secretOf(ch: Channel): string {
  let s = secrets.get(ch);
  if (s === undefined) {
    s = randomBytes(12).toString('base64url');
    secrets.set(ch, s);
  }
  return s;
}

export function isDirectReplyAddress(routingKey: string): boolean {
  return routingKey.startsWith(PREFIX);
}

export function startDirectReplyConsumer(ch: Channel, tag: string, noAck: boolean): void {
  // RabbitMQ: the reply consumer must be no-ack, and there is one per channel
  if (!noAck) throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'reply consumer cannot acknowledge', 60, 20);
  if (ch.directReplyConsumerTag !== null) {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'reply consumer already set', 60, 20);
  }
  ch.directReplyConsumerTag = tag;
}

/** A request with reply_to = amq.rabbitmq.reply-to: rewrite it to this channel's address. */
export function rewriteReplyTo(ch: Channel, message: Message): Message {
  if (ch.directReplyConsumerTag === null) {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'fast reply consumer does not exist', 60, 40);
  }
  const props = { ...message.properties(), replyTo: `${PREFIX}${ch.conn.id}.${ch.id}.${secretOf(ch)}` };
  return new Message(message.exchange, message.routingKey, encodeBasicProperties(props), message.body);
}

/** Delivers a reply to the requester's channel; false when the address names no live requester. */
export function publishDirectReply(from: Channel, message: Message): boolean {
  const parts = message.routingKey.slice(PREFIX.length).split('.');
  if (parts.length !== 3) return false;
  const conn = from.conn.broker.findConnection(Number(parts[0]));
  const target = conn?.channels.get(Number(parts[1]));
  if (target === undefined || target.directReplyConsumerTag === null || secrets.get(target) !== parts[2]) return false;
  target.deliverDirectReply(message);
  return true;
}
