import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Paths whose values never reach a log line. Credentials show up as a top-level
 * `password`, inside one object (`{ user: { password } }`), or in the config's default user.
 */
const REDACTED_PATHS = [
  'password',
  '*.password',
  'users[*].password',
  '*.users[*].password',
  'defaultUser.password',
  '*.defaultUser.password',
  'tlsKey',
  '*.tlsKey',
];

/**
 * Structured JSON logger for the broker. `level` is any pino level name,
 * including 'silent' (library use and tests: nothing is written).
 * `destination` defaults to stdout; tests pass a stream to capture lines.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    name: 'warren',
    level,
    redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
