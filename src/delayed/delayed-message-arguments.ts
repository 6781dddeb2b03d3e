import { AmqpChannelError, AmqpConnectionError } from '../protocol/errors.js';
import type { FieldTable } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';

/** The plugin delays at most Erlang's max timer (?ERL_MAX_T); larger delays route at once. */
export const MAX_MESSAGE_DELAY_MS = 4_294_967_295;

/**
 * A message's x-delay in ms, or 0 when it must be routed now (the community plugin's
 * get_delay + delay_message): absent, not a number, <= 0 or > 2^32 - 1 → 0.
 * Integer types are taken as they are, floats truncated, strings parsed as decimal
 * integers. Unlike the plugin we also accept int8 ('b'), which it ignores, because
 * amqplib encodes small integers as int8; an unparsable string routes at once where
 * the plugin's conversion would crash the channel.
 */
export function messageDelay(headers: FieldTable | undefined): number {
  const v = headers?.get('x-delay');
  if (v === undefined) return 0;
  let delay: number;
  switch (v.type) {
    case 'b':
    case 'B':
    case 's':
    case 'u':
    case 'I':
    case 'i':
      delay = v.value;
      break;
    case 'l':
      delay = v.value > BigInt(MAX_MESSAGE_DELAY_MS) ? Number.POSITIVE_INFINITY : Number(v.value);
      break;
    case 'f':
    case 'd':
      delay = Math.trunc(v.value);
      break;
    case 'S':
    case 'x': {
      const text = v.value.toString('latin1');
      // Erlang binary_to_integer: optional sign, decimal digits, nothing else
      if (!/^[+-]?[0-9]+$/.test(text)) return 0;
      delay = Number(text);
      break;
    }
    default:
      return 0;
  }
  return delay > 0 && delay <= MAX_MESSAGE_DELAY_MS ? delay : 0;
}

/**
 * Validates an x-delayed-message exchange's arguments (plugin validate/1) and returns
 * the routing type named by x-delayed-type. The caller then validates the arguments as
 * that type would (the plugin delegates), and binds/routes with that type's table.
 * An unknown type is refused as exchange.declare refuses one (503, as our handler does).
 */
export function delayedExchangeType(args: FieldTable, isKnownType: (type: string) => boolean): string {
  const v = args.get('x-delayed-type');
  if (v === undefined || (v.type !== 'S' && v.type !== 'x')) {
    throw new AmqpChannelError(
      ReplyCode.PreconditionFailed,
      "Invalid argument, 'x-delayed-type' must be an existing exchange type",
    );
  }
  const type = v.value.toString('utf8');
  if (type === 'x-delayed-message') {
    throw new AmqpChannelError(
      ReplyCode.PreconditionFailed,
      "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'",
    );
  }
  if (!isKnownType(type)) {
    throw new AmqpConnectionError(ReplyCode.CommandInvalid, `unknown exchange type '${type}'`);
  }
  return type;
}
