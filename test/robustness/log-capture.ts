import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface LogLine {
  readonly level: number;
  readonly msg?: string;
  readonly [key: string]: unknown;
}

/** pino's numeric level for 'error' (fatal is 60) */
export const ERROR_LEVEL = 50;

/**
 * A pino logger whose lines are kept in memory, so a test can wait for one (an event, not a
 * sleep) and check that no error was logged.
 */
export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly logger: Logger;
  private readonly waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(level = 'info') {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const text of chunk.toString('utf8').split('\n')) if (text !== '') this.add(JSON.parse(text) as LogLine);
        done();
      },
    });
    this.logger = pino({ name: 'warren', level }, sink);
  }

  private add(line: LogLine): void {
    this.lines.push(line);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.match(line)) {
        this.waiters.splice(i, 1);
        w.resolve(line);
      }
    }
  }

  /** The first line (already logged, or to come) that matches. */
  waitFor(match: (l: LogLine) => boolean): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** Lines at error level or above. */
  errors(): LogLine[] {
    return this.lines.filter((l) => l.level >= ERROR_LEVEL);
  }
}
