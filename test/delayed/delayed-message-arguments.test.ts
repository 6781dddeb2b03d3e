import { describe, expect, it } from 'vitest';
import { delayedExchangeType, MAX_MESSAGE_DELAY_MS, messageDelay } from '../../src/delayed/delayed-message-arguments.js';
import { AmqpChannelError, AmqpConnectionError } from '../../src/protocol/errors.js';
import { ReplyCode } from '../../src/protocol/reply-code.js';
import { bool, float, int, long, str, table } from '../routing/routing-helpers.js';

const known = (t: string): boolean => ['direct', 'fanout', 'topic', 'headers', 'x-consistent-hash'].includes(t);

describe('messageDelay', () => {
  it('absent or non-positive x-delay means route now', () => {
    expect(messageDelay(undefined)).toBe(0);
    expect(messageDelay(table())).toBe(0);
    expect(messageDelay(table({ 'x-delay': int(0) }))).toBe(0);
    expect(messageDelay(table({ 'x-delay': int(-500) }))).toBe(0);
  });

  it('accepts every integer width, floats truncated, decimal strings', () => {
    expect(messageDelay(table({ 'x-delay': int(100, 'b') }))).toBe(100);
    expect(messageDelay(table({ 'x-delay': int(1000, 's') }))).toBe(1000);
    expect(messageDelay(table({ 'x-delay': int(70_000, 'I') }))).toBe(70_000);
    expect(messageDelay(table({ 'x-delay': int(70_000, 'i') }))).toBe(70_000);
    expect(messageDelay(table({ 'x-delay': long(5000n) }))).toBe(5000);
    expect(messageDelay(table({ 'x-delay': float(1500.9) }))).toBe(1500);
    expect(messageDelay(table({ 'x-delay': str('2500') }))).toBe(2500);
    expect(messageDelay(table({ 'x-delay': str('soon') }))).toBe(0);
    expect(messageDelay(table({ 'x-delay': bool(true) }))).toBe(0);
  });

  it('delays above 2^32 - 1 ms route now, as the plugin does', () => {
    expect(messageDelay(table({ 'x-delay': long(BigInt(MAX_MESSAGE_DELAY_MS)) }))).toBe(MAX_MESSAGE_DELAY_MS);
    expect(messageDelay(table({ 'x-delay': long(BigInt(MAX_MESSAGE_DELAY_MS) + 1n) }))).toBe(0);
    expect(messageDelay(table({ 'x-delay': long(2n ** 62n) }))).toBe(0);
  });
});

describe('delayedExchangeType', () => {
  it('returns the routing type named by x-delayed-type', () => {
    expect(delayedExchangeType(table({ 'x-delayed-type': str('topic') }), known)).toBe('topic');
  });

  it('406 when missing or not a string, or x-delayed-message itself', () => {
    const expect406 = (fn: () => unknown, text: string): void => {
      try {
        fn();
        expect.fail('expected a channel error');
      } catch (e) {
        expect(e).toBeInstanceOf(AmqpChannelError);
        expect((e as AmqpChannelError).replyCode).toBe(ReplyCode.PreconditionFailed);
        expect((e as AmqpChannelError).replyText).toBe(text);
      }
    };
    expect406(() => delayedExchangeType(table(), known), "Invalid argument, 'x-delayed-type' must be an existing exchange type");
    expect406(() => delayedExchangeType(table({ 'x-delayed-type': int(1) }), known),
      "Invalid argument, 'x-delayed-type' must be an existing exchange type");
    expect406(() => delayedExchangeType(table({ 'x-delayed-type': str('x-delayed-message') }), known),
      "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'");
  });

  it('an unknown type is refused like exchange.declare refuses it', () => {
    try {
      delayedExchangeType(table({ 'x-delayed-type': str('nope') }), known);
      expect.fail('expected a connection error');
    } catch (e) {
      expect(e).toBeInstanceOf(AmqpConnectionError);
      expect((e as AmqpConnectionError).replyCode).toBe(ReplyCode.CommandInvalid);
      expect((e as AmqpConnectionError).replyText).toBe("unknown exchange type 'nope'");
    }
  });
});
