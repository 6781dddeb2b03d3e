import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';

function capture(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger(level, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe('createLogger', () => {
  it('writes structured JSON named warren at the requested level', () => {
    const { logger, lines } = capture('info');
    logger.debug('hidden');
    logger.info({ port: 5672 }, 'Warren listening');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ name: 'warren', level: 30, msg: 'Warren listening', port: 5672 });
  });

  it('redacts password fields wherever the broker logs them', () => {
    const { logger, lines } = capture('info');
    logger.info({
      password: 's-top',
      user: { username: 'guest', password: 's-nested' },
      users: [{ username: 'a', password: 's-list' }],
      config: { users: [{ username: 'b', password: 's-config' }] },
    }, 'credentials');
    const text = JSON.stringify(lines);
    for (const secret of ['s-top', 's-nested', 's-list', 's-config']) expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({ password: '[REDACTED]', user: { username: 'guest', password: '[REDACTED]' } });
  });

  it("supports 'silent'", () => {
    const { logger, lines } = capture('silent');
    logger.fatal('nothing');
    expect(lines).toEqual([]);
  });
});

describe('createLogger (human-readable)', () => {
  it('writes one readable line per record instead of JSON', () => {
    const out: string[] = [];
    const logger = createLogger('info', { write: (s: string) => out.push(s) }, true);
    logger.info({ port: 5672 }, 'Warren listening');
    const text = out.join('');
    expect(text).toContain('INFO');
    expect(text).toContain('Warren listening');
    expect(text).toContain('port: 5672');
    expect(() => JSON.parse(text)).toThrow();
  });
});
