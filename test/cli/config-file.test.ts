import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/config.js';
import { CliUsageError, CONFIG_FILE_KEYS, parseCli } from '../../src/cli/parse-args.js';

function configWith(files: Record<string, string>, argv: string[], env: NodeJS.ProcessEnv = {}) {
  const result = parseCli(argv, env, (path) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return text;
  });
  if (!('command' in result) || result.command !== 'start') throw new Error('expected start');
  return result.config;
}

function usageError(files: Record<string, string>, argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    configWith(files, argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(CliUsageError);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error('expected a usage error');
}

const FILE = `
# Warren config: keys are the flags' names
host: 127.0.0.1
port: 5790
data-dir: /var/lib/warren
log-level: debug
log-format: json
heartbeat: 30
management-port: 15790
metrics-port: 0
stats-interval: 1000
memory-high-watermark: 0.5
default-user: admin
default-pass: s3cret
`;

describe('config file (--config FILE, YAML)', () => {
  it('reads every setting from the file', () => {
    const c = configWith({ '/etc/warren.yaml': FILE }, ['start', '--config', '/etc/warren.yaml']);
    expect(c).toMatchObject({
      host: '127.0.0.1', port: 5790, dataDir: '/var/lib/warren', logLevel: 'debug', logFormat: 'json', heartbeat: 30,
      managementPort: 15790, metricsPort: null, statsInterval: 1000, memoryHighWatermark: 0.5,
      defaultUser: { username: 'admin', password: 's3cret' },
    });
  });

  it('takes its path from WARREN_CONFIG_FILE too', () => {
    expect(configWith({ '/w.yaml': 'port: 5791' }, ['start'], { WARREN_CONFIG_FILE: '/w.yaml' }).port).toBe(5791);
  });

  it('flags win over the environment, which wins over the file', () => {
    const files = { '/w.yaml': 'port: 1111\nheartbeat: 11\nframe-max: 8192\n' };
    const c = configWith(files, ['start', '--config', '/w.yaml', '--port', '3333'], { WARREN_PORT: '2222', WARREN_HEARTBEAT: '22' });
    expect(c.port).toBe(3333);
    expect(c.heartbeat).toBe(22);
    expect(c.frameMax).toBe(8192);
    expect(c.channelMax).toBe(DEFAULT_CONFIG.channelMax);
  });

  it('knows every flag as a key', () => {
    for (const key of ['host', 'port', 'data-dir', 'log-level', 'heartbeat', 'frame-max', 'channel-max', 'consumer-timeout',
      'memory-high-watermark', 'disk-free-limit', 'queue-memory-budget', 'queue-memory-window', 'default-user', 'default-pass', 'management-port',
      'metrics-port', 'stats-interval', 'log-format']) {
      expect(CONFIG_FILE_KEYS).toContain(key);
    }
  });

  it('refuses a missing file, bad YAML, unknown keys and bad values with one line naming the file', () => {
    expect(usageError({}, ['start', '--config', '/nope.yaml'])).toMatch(/cannot read config file \/nope\.yaml: no such file/);
    expect(usageError({ '/w.yaml': 'port: [1, 2' }, ['start', '--config', '/w.yaml'])).toMatch(/\/w\.yaml is not valid YAML/);
    expect(usageError({ '/w.yaml': '- a\n- b\n' }, ['start', '--config', '/w.yaml'])).toMatch(/expected a mapping/);
    expect(usageError({ '/w.yaml': 'prot: 5672\n' }, ['start', '--config', '/w.yaml'])).toMatch(/unknown setting 'prot'/);
    expect(usageError({ '/w.yaml': 'port: 99999\n' }, ['start', '--config', '/w.yaml'])).toMatch(/invalid 'port' in \/w\.yaml "99999"/);
    expect(usageError({ '/w.yaml': 'port:\n  a: 1\n' }, ['start', '--config', '/w.yaml'])).toMatch(/'port' must be a single value/);
  });

  it('an empty file changes nothing', () => {
    expect(configWith({ '/w.yaml': '' }, ['start', '--config', '/w.yaml'])).toEqual(DEFAULT_CONFIG);
  });
});

describe('management, metrics, stats and log flags', () => {
  it('defaults to RabbitMQ ports 15672 and 15692', () => {
    expect(configWith({}, ['start'])).toMatchObject({ managementPort: 15672, metricsPort: 15692, statsInterval: 5000, logFormat: 'auto' });
  });

  it('0 turns a listener off; the environment sets them too', () => {
    expect(configWith({}, ['start', '--management-port', '0', '--metrics-port', '0'])).toMatchObject({ managementPort: null, metricsPort: null });
    expect(configWith({}, ['start'], { WARREN_MANAGEMENT_PORT: '15999', WARREN_METRICS_PORT: '15998', WARREN_STATS_INTERVAL: '250', WARREN_LOG_FORMAT: 'pretty' }))
      .toMatchObject({ managementPort: 15999, metricsPort: 15998, statsInterval: 250, logFormat: 'pretty' });
  });

  it('refuses bad values', () => {
    expect(usageError({}, ['start', '--management-port', '70000'])).toMatch(/--management-port/);
    expect(usageError({}, ['start', '--log-format', 'xml'])).toMatch(/expected one of json, pretty, auto/);
    expect(usageError({}, ['start', '--stats-interval', '5'])).toMatch(/--stats-interval/);
  });
});
