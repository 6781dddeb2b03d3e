import { PROTOCOL_HEADER } from './generated/constants.js';

/**
 * The AMQP 0-9 header, "AMQP" 1 1 0 9 (class 1, instance 1, version 0-9), which 0-9 clients
 * send (Perl's Net::AMQP, under AnyEvent::RabbitMQ). RabbitMQ's reader treats it as 0-9-1:
 * "This is the protocol header for 0-9, which we can safely treat as though it were 0-9-1"
 * (rabbit_reader:handshake/2), and its connection.start says 0-9 to both.
 */
export const AMQP_0_9_HEADER: Buffer = Buffer.from([0x41, 0x4d, 0x51, 0x50, 1, 1, 0, 9]);

/**
 * Whether we speak AMQP 0-9-1 to a client that sent this protocol header. Anything else is
 * answered with PROTOCOL_HEADER (0-9-1) and the socket closed, as the spec asks. Unlike
 * RabbitMQ we do not speak 0-8 ("AMQP" 1 1 8 0 / 1 1 9 1) or AMQP 1.0.
 */
export function speaks091(header: Buffer): boolean {
  return header.equals(PROTOCOL_HEADER) || header.equals(AMQP_0_9_HEADER);
}
