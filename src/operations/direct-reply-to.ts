import { randomBytes } from 'node:crypto';
import type { Message } from '../message/message.js';

/** Pseudo-queue name of RabbitMQ's direct reply-to. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
const PREFIX = `${DIRECT_REPLY_TO}.`;

/** Where replies for one requester go (the AMQP channel with the no-ack reply consumer). */
export interface DirectReplySink {
  deliverDirectReply(message: Message): void;
}

export function isDirectReplyAddress(routingKey: string): boolean {
  return routingKey.startsWith(PREFIX);
}

/**
 * RabbitMQ's direct reply-to: a requester consumes the pseudo-queue amq.rabbitmq.reply-to
 * (no-ack) and publishes with reply_to set to it; the broker rewrites reply_to into an
 * address of its own, and a reply published to the default exchange with that routing key
 * goes straight to the requester, with no queue in between. Addresses are unguessable
 * (128 random bits); a reply to an address no longer registered is dropped.
 */
export class DirectReplyRegistry {
  private readonly sinks = new Map<string, DirectReplySink>();

  register(sink: DirectReplySink): string {
    const address = PREFIX + randomBytes(16).toString('base64url');
    this.sinks.set(address, sink);
    return address;
  }

  unregister(address: string): void {
    this.sinks.delete(address);
  }

  /** false when the address names no live requester */
  deliver(address: string, message: Message): boolean {
    const sink = this.sinks.get(address);
    if (sink === undefined) return false;
    sink.deliverDirectReply(message);
    return true;
  }
}
