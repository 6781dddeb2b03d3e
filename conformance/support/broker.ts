import { inject } from 'vitest';

/** The broker under test: a Warren started by global-setup.ts, or whatever AMQP_URL names. */
export const amqpUrl = (): string => inject('amqpUrl');

/**
 * True when the suite runs against Warren (in-process), false against AMQP_URL (RabbitMQ).
 * Mark a Warren-only case `it.skipIf(!isWarren())('… (Warren extension)', …)`; see README.md.
 */
export const isWarren = (): boolean => inject('brokerKind') === 'warren';

/** The user name the suite authenticates as (a user-id property must equal it, RabbitMQ checks). */
export function connectionUser(): string {
  const user = new URL(amqpUrl()).username;
  return user === '' ? 'guest' : decodeURIComponent(user);
}
