/** AMQP 0-9-1 reply codes (spec constants), named as the spec names them. */
export enum ReplyCode {
  ReplySuccess = 200,
  ContentTooLarge = 311,
  NoRoute = 312,
  NoConsumers = 313,
  ConnectionForced = 320,
  InvalidPath = 402,
  AccessRefused = 403,
  NotFound = 404,
  ResourceLocked = 405,
  PreconditionFailed = 406,
  FrameError = 501,
  SyntaxError = 502,
  CommandInvalid = 503,
  ChannelError = 504,
  UnexpectedFrame = 505,
  ResourceError = 506,
  NotAllowed = 530,
  NotImplemented = 540,
  InternalError = 541,
}

/** RabbitMQ's reply-text prefix: the upper-case spec name, e.g. "NOT_FOUND". */
export function replyCodeName(code: ReplyCode): string {
  return (ReplyCode[code] ?? 'UNKNOWN').replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
}
