import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

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
 * Structured logger for the broker: JSON lines, one object per line, for machines;
 * or, with `human`, the same records made readable for a terminal (pino-pretty).
 * `level` is any pino level name, including 'silent' (library use and tests: nothing is
 * written). `destination` defaults to stdout; tests pass a stream to capture lines.
 */
export function createLogger(level: string, destination?: DestinationStream, human = false): Logger {
  const options = {
    name: 'warren',
    level,
    redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
  };
  if (human) {
    const prettify = prettyFactory({
      colorize: destination === undefined && process.stdout.isTTY === true,
      translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
      ignore: 'pid,hostname,name',
    });
    const out = destination ?? process.stdout;
    return pino(options, { write: (line: string) => void out.write(prettify(line)) });
  }
  return destination === undefined ? pino(options) : pino(options, destination);
}
