import type { FieldTable } from '../protocol/field-types.js';
import { fieldTableFromJs } from '../protocol/field-table.js';

/**
 * How Warren presents itself in connection.start's server-properties.
 *
 * Clients key on `product` and `version`: kombu (and so every Celery worker) picks its basic.qos
 * semantics by them, sending global=true for its shared prefetch only to "RabbitMQ" 3.3 or later
 * and global=false (expecting the 0-9-1 spec's meaning, which RabbitMQ changed) to anything
 * else. Warren implements RabbitMQ's semantics, so it says it is RabbitMQ, of the release whose
 * behaviour it follows, and names itself in `platform`, `information` and `warren_version`,
 * where people and tools look. docs/differences.md explains the choice.
 */
export const PRODUCT = 'RabbitMQ';

/** The RabbitMQ release whose behaviour Warren follows (its reply codes, texts and edge cases). */
export const RABBITMQ_COMPATIBLE_VERSION = '3.10.0';

/**
 * Capabilities we advertise. Only what works: clients (kombu, Spring, the Java and .NET
 * clients) switch behaviour on these. The same set as RabbitMQ 3.10.
 */
const CAPABILITIES = {
  'connection.blocked': true,
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  'basic.nack': true,
  consumer_cancel_notify: true,
  authentication_failure_close: true,
  per_consumer_qos: true,
  direct_reply_to: true,
  consumer_priorities: true,
};

export function serverProperties(warrenVersion: string): FieldTable {
  return fieldTableFromJs({
    product: PRODUCT,
    version: RABBITMQ_COMPATIBLE_VERSION,
    platform: `Warren ${warrenVersion} on Node.js ${process.version}`,
    copyright: 'Copyright (c) Warren contributors',
    information: `Warren ${warrenVersion}, an AMQP 0-9-1 broker compatible with RabbitMQ ${RABBITMQ_COMPATIBLE_VERSION}. Licensed under the MIT license.`,
    warren_version: warrenVersion,
    capabilities: CAPABILITIES,
  });
}
