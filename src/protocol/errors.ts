import { ReplyCode } from './reply-code.js';

/**
 * A protocol error that closes one channel (403, 404, 405, 406 …).
 * Thrown anywhere below the connection layer; only connection/ turns it into
 * channel.close. classId/methodId name the method that caused it (0 when none).
 */
export class AmqpChannelError extends Error {
  constructor(
    readonly replyCode: ReplyCode,
    readonly replyText: string,
    readonly classId = 0,
    readonly methodId = 0,
  ) {
    super(replyText);
    this.name = 'AmqpChannelError';
  }
}

/**
 * A protocol error that closes the whole connection (501, 503, 504, 505, 530, 540 …).
 * Only connection/ turns it into connection.close.
 */
export class AmqpConnectionError extends Error {
  constructor(
    readonly replyCode: ReplyCode,
    readonly replyText: string,
    readonly classId = 0,
    readonly methodId = 0,
  ) {
    super(replyText);
    this.name = 'AmqpConnectionError';
  }
}
