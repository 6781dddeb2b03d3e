import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/config.js';
import { CliUsageError, parseCli } from '../../src/cli/parse-args.js';

function startConfig(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const result = parseCli(argv, env);
  if (!('command' in result) || result.command !== 'start') throw new Error(`expected a start command, got ${JSON.stringify(result)}`);
  return result.config;
}

function usageError(argv: string[], env: NodeJS.ProcessEnv = {}): CliUsageError {
  try {
    parseCli(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(CliUsageError);
    return err as CliUsageError;
  }
  throw new Error(`expected a CliUsageError for ${JSON.stringify(argv)} ${JSON.stringify(env)}`);
}

describe('parseCli', () => {
  it('start with nothing else gives DEFAULT_CONFIG', () => {
    expect(parseCli(['start'], {})).toEqual({ command: 'start', config: DEFAULT_CONFIG });
  });

  it('reads every flag', () => {
    const config = startConfig([
      'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', '/var/lib/warren', '--log-level', 'debug',
      '--heartbeat', '0', '--frame-max', '4096', '--channel-max', '16',
    ]);
    expect(config).toMatchObject({
      host: '127.0.0.1', port: 0, dataDir: '/var/lib/warren', logLevel: 'debug',
      heartbeat: 0, frameMax: 4096, channelMax: 16,
    });
    expect(config.defaultUser).toEqual(DEFAULT_CONFIG.defaultUser);
    expect(config.vhosts).toEqual(DEFAULT_CONFIG.vhosts);
  });

  it('accepts --flag=value form and options before the command', () => {
    expect(startConfig(['--port=5673', 'start', '--host=::1'])).toMatchObject({ port: 5673, host: '::1' });
  });

  it('reads every environment variable', () => {
    const config = startConfig(['start'], {
      WARREN_HOST: '10.0.0.1', WARREN_PORT: '5999', WARREN_DATA_DIR: '/data', WARREN_LOG_LEVEL: 'warn',
      WARREN_HEARTBEAT: '30', WARREN_FRAME_MAX: '65536', WARREN_CHANNEL_MAX: '100',
    });
    expect(config).toMatchObject({
      host: '10.0.0.1', port: 5999, dataDir: '/data', logLevel: 'warn', heartbeat: 30, frameMax: 65536, channelMax: 100,
    });
  });

  it('flags win over environment, environment over defaults', () => {
    const config = startConfig(['start', '--port', '1234', '--log-level', 'error'], {
      WARREN_PORT: '9999', WARREN_LOG_LEVEL: 'trace', WARREN_HEARTBEAT: '5',
    });
    expect(config.port).toBe(1234);
    expect(config.logLevel).toBe('error');
    expect(config.heartbeat).toBe(5);
    expect(config.frameMax).toBe(DEFAULT_CONFIG.frameMax);
  });

  it('treats an empty environment variable as unset', () => {
    expect(startConfig(['start'], { WARREN_PORT: '', WARREN_DATA_DIR: '' })).toMatchObject({
      port: DEFAULT_CONFIG.port, dataDir: DEFAULT_CONFIG.dataDir,
    });
  });

  it('ignores unrelated environment variables', () => {
    expect(startConfig(['start'], { PORT: '1', HOST: 'x', WARREN_UNKNOWN: 'y' })).toEqual(DEFAULT_CONFIG);
  });

  it('--force-recovery and WARREN_FORCE_RECOVERY switch forced recovery on (off by default)', () => {
    expect(DEFAULT_CONFIG.forceRecovery).toBe(false);
    expect(startConfig(['start', '--force-recovery']).forceRecovery).toBe(true);
    expect(startConfig(['start'], { WARREN_FORCE_RECOVERY: 'true' }).forceRecovery).toBe(true);
    expect(startConfig(['start'], { WARREN_FORCE_RECOVERY: '1' }).forceRecovery).toBe(true);
    expect(startConfig(['start'], { WARREN_FORCE_RECOVERY: 'false' }).forceRecovery).toBe(false);
    expect(startConfig(['start'], { WARREN_FORCE_RECOVERY: '' }).forceRecovery).toBe(false);
    expect(usageError(['start'], { WARREN_FORCE_RECOVERY: 'maybe' }).message).toBe('invalid WARREN_FORCE_RECOVERY "maybe": expected true or false');
    expect(usageError(['start', '--force-recovery=yes']).message).toMatch(/force-recovery/);
  });

  it('--queue-memory-budget (a fraction of the watermark, or bytes) and --queue-memory-window (0 = none), from flags and the environment', () => {
    expect(startConfig(['start'])).toMatchObject({ queueMemoryBudget: 0, queueMemoryWindow: 0 });
    expect(startConfig(['start', '--queue-memory-budget', '0.25', '--queue-memory-window', '5000'])).toMatchObject({ queueMemoryBudget: 0.25, queueMemoryWindow: 5000 });
    expect(startConfig(['start'], { WARREN_QUEUE_MEMORY_BUDGET: '268435456', WARREN_QUEUE_MEMORY_WINDOW: '0' })).toMatchObject({
      queueMemoryBudget: 268435456,
      queueMemoryWindow: 0,
    });
    expect(usageError(['start', '--queue-memory-budget', '-1']).message).toContain('--queue-memory-budget');
    expect(usageError(['start', '--queue-memory-window', 'lots']).message).toContain('--queue-memory-window');
  });

  it('--busy-poll: microseconds, 100 by default, 0 = off, from flags and the environment', () => {
    expect(startConfig(['start'])).toMatchObject({ busyPoll: 100 });
    expect(startConfig(['start', '--busy-poll', '0'])).toMatchObject({ busyPoll: 0 });
    expect(startConfig(['start'], { WARREN_BUSY_POLL: '250' })).toMatchObject({ busyPoll: 250 });
    expect(usageError(['start', '--busy-poll', '-5']).message).toContain('--busy-poll');
    expect(usageError(['start', '--busy-poll', 'fast']).message).toContain('--busy-poll');
  });

  it('--default-user/--default-pass replace guest with a user that is not loopback-only', () => {
    const config = startConfig(['start', '--default-user', 'admin', '--default-pass', 's3cret']);
    expect(config.defaultUser).toEqual({ username: 'admin', password: 's3cret' });
    // only guest is in loopback_users, as with RabbitMQ
    expect(config.loopbackUsers).toEqual(['guest']);
    expect(startConfig(['start'], { WARREN_DEFAULT_USER: 'app', WARREN_DEFAULT_PASS: 'pw' }).defaultUser).toEqual({ username: 'app', password: 'pw' });
    // A flag and the environment may supply one half each; the flag still wins.
    expect(startConfig(['start', '--default-user', 'flaguser'], { WARREN_DEFAULT_USER: 'x', WARREN_DEFAULT_PASS: 'pw' }).defaultUser)
      .toEqual({ username: 'flaguser', password: 'pw' });
  });

  it('--help and --version win over everything else', () => {
    expect(parseCli(['--help'], {})).toEqual({ help: true });
    expect(parseCli(['-h'], {})).toEqual({ help: true });
    expect(parseCli(['start', '--port', '1', '--help'], {})).toEqual({ help: true });
    expect(parseCli(['help'], {})).toEqual({ help: true });
    expect(parseCli(['--version'], {})).toEqual({ version: true });
    expect(parseCli(['-v'], {})).toEqual({ version: true });
    // Bad environment values do not stop --help from working.
    expect(parseCli(['--help'], { WARREN_PORT: 'nope' })).toEqual({ help: true });
  });

  describe('usage errors', () => {
    it('missing, unknown or extra commands', () => {
      expect(usageError([]).message).toMatch(/missing command/);
      expect(usageError(['stop']).message).toMatch(/unknown command 'stop'/);
      expect(usageError(['start', 'now']).message).toMatch(/unexpected argument 'now'/);
    });

    it('unknown flags and flags without a value', () => {
      expect(usageError(['start', '--prot', '5672']).message).toMatch(/--prot/);
      expect(usageError(['start', '--port']).message).toMatch(/--port/);
      // node's parseArgs explains this case over several lines; we keep the first.
      const ambiguous = usageError(['start', '--port', '-1']);
      expect(ambiguous.message).toMatch(/--port/);
      expect(ambiguous.message).not.toContain('\n');
    });

    it.each([
      ['--port', '65536'], ['--port=', '-1'], ['--port', 'abc'], ['--port', '1.5'], ['--port', '0x10'],
      ['--port', '1e3'], ['--port', ' 80'], ['--port', ''],
      ['--heartbeat', '70000'], ['--heartbeat=', '-5'],
      ['--frame-max', '4095'], ['--frame-max', '4294967296'], ['--frame-max', '0'],
      ['--channel-max', '0'], ['--channel-max', '65536'],
      ['--log-level', 'verbose'], ['--log-level', 'INFO'],
      ['--host', ''], ['--data-dir', ''],
    ])('rejects %s %j with a one-line message naming the flag', (flag, value) => {
      const err = usageError(flag.endsWith('=') ? ['start', flag + value] : ['start', flag, value]);
      expect(err.message).toContain(flag.replace('=', ''));
      expect(err.message).toContain(JSON.stringify(value));
      expect(err.message).not.toContain('\n');
    });

    it('names the environment variable when the bad value came from it', () => {
      expect(usageError(['start'], { WARREN_PORT: '70000' }).message).toBe(
        'invalid WARREN_PORT "70000": expected an integer from 0 to 65535',
      );
      expect(usageError(['start'], { WARREN_LOG_LEVEL: 'loud' }).message).toMatch(/^invalid WARREN_LOG_LEVEL "loud"/);
    });

    it('a valid flag overrides an invalid environment value', () => {
      expect(startConfig(['start', '--port', '5673'], { WARREN_PORT: 'garbage' }).port).toBe(5673);
    });

    it('accepts the boundaries', () => {
      expect(startConfig(['start', '--port', '65535', '--heartbeat', '65535', '--frame-max', '4294967295',
        '--channel-max', '65535'])).toMatchObject({ port: 65535, heartbeat: 65535, frameMax: 4294967295, channelMax: 65535 });
    });

    it('--default-user and --default-pass must come together', () => {
      expect(usageError(['start', '--default-user', 'admin']).message).toMatch(/--default-user needs --default-pass/);
      expect(usageError(['start'], { WARREN_DEFAULT_PASS: 'pw' }).message).toMatch(/WARREN_DEFAULT_PASS needs --default-user/);
      expect(usageError(['start', '--default-user', ' ', '--default-pass', 'x']).message).toMatch(/invalid --default-user/);
    });
  });

  describe('TLS and definitions', () => {
    it('maps every TLS flag and its environment variable', () => {
      const config = startConfig([
        'start', '--tls-port', '5671', '--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--tls-ca', 'ca.pem',
        '--tls-verify-peer', '--tls-fail-if-no-peer-cert', '--tls-cert-login-from', 'subject_alternative_name',
        '--tls-cert-login-san-type', 'email', '--tls-cert-login-san-index', '1', '--tls-handshake-timeout', '3000',
        '--no-plain', '--definitions', 'defs.json',
      ]);
      expect(config).toMatchObject({
        tlsPort: 5671, tlsCert: 'c.pem', tlsKey: 'k.pem', tlsCa: 'ca.pem', tlsVerifyPeer: true, tlsFailIfNoPeerCert: true,
        tlsCertLoginFrom: 'subject_alternative_name', tlsCertLoginSanType: 'email', tlsCertLoginSanIndex: 1,
        tlsHandshakeTimeout: 3000, plain: false, definitions: 'defs.json',
      });
      expect(startConfig(['start'], {
        WARREN_TLS_PORT: '5671', WARREN_TLS_CERT: 'c.pem', WARREN_TLS_KEY: 'k.pem', WARREN_TLS_CA: 'ca.pem',
        WARREN_TLS_VERIFY_PEER: 'true', WARREN_NO_PLAIN: 'false', WARREN_DEFINITIONS: 'd.json',
      })).toMatchObject({ tlsPort: 5671, tlsVerifyPeer: true, tlsFailIfNoPeerCert: false, plain: true, definitions: 'd.json' });
      expect(startConfig(['start'])).toMatchObject({ tlsPort: null, plain: true, definitions: null });
    });

    it('refuses TLS flags that do not go together, naming them', () => {
      expect(usageError(['start', '--tls-port', '5671']).message).toMatch(/--tls-port needs --tls-cert and --tls-key/);
      expect(usageError(['start', '--tls-cert', 'c.pem']).message).toMatch(/--tls-cert needs --tls-port/);
      expect(usageError(['start', '--tls-port', '1', '--tls-cert', 'c', '--tls-key', 'k', '--tls-verify-peer']).message).toMatch(/--tls-verify-peer needs --tls-ca/);
      expect(usageError(['start', '--tls-port', '1', '--tls-cert', 'c', '--tls-key', 'k', '--tls-fail-if-no-peer-cert']).message).toMatch(/needs --tls-verify-peer/);
      expect(usageError(['start', '--no-plain']).message).toMatch(/--no-plain needs --tls-port/);
      expect(usageError(['start'], { WARREN_TLS_VERIFY_PEER: 'maybe' }).message).toMatch(/invalid WARREN_TLS_VERIFY_PEER "maybe": expected true or false/);
      expect(usageError(['start', '--tls-cert-login-from', 'cn']).message).toMatch(/expected one of common_name, distinguished_name, subject_alternative_name/);
    });
  });
});

describe('parseCli: clustering', () => {
  it('--cluster-etcd turns clustering on with the documented defaults', () => {
    const config = startConfig(['start', '--cluster-etcd', '127.0.0.1:2379,http://10.0.0.2:2379', '--cluster-advertise', '10.0.0.1']);
    expect(config.cluster).toEqual({
      etcd: ['127.0.0.1:2379', 'http://10.0.0.2:2379'],
      advertise: '10.0.0.1',
      port: 5679,
      nodeId: null,
      name: 'warren',
      leaseTtl: 3,
      minInsync: 1,
      followerAckTimeout: 2000,
      tls: null,
    });
  });

  it('without --cluster-etcd there is no cluster, and cluster flags alone are refused', () => {
    expect(startConfig(['start']).cluster).toBeNull();
    expect(usageError(['start', '--cluster-port', '6000']).message).toBe('--cluster-port needs --cluster-etcd (or WARREN_CLUSTER_ETCD)');
    expect(usageError(['start'], { WARREN_NODE_ID: 'a' }).message).toBe('WARREN_NODE_ID needs --cluster-etcd (or WARREN_CLUSTER_ETCD)');
  });

  it('reads every cluster setting from flags and from the environment', () => {
    const flags = startConfig([
      'start', '--host', '127.0.0.1', '--cluster-etcd', 'e1:2379', '--cluster-port', '5801', '--node-id', 'n1', '--cluster-name', 'prod',
      '--cluster-lease-ttl', '5', '--cluster-min-insync', '2', '--cluster-follower-timeout', '3000',
      '--cluster-tls-cert', 'c.pem', '--cluster-tls-key', 'k.pem', '--cluster-tls-ca', 'ca.pem',
    ]);
    const env = startConfig(['start'], {
      WARREN_HOST: '127.0.0.1', WARREN_CLUSTER_ETCD: 'e1:2379', WARREN_CLUSTER_PORT: '5801', WARREN_NODE_ID: 'n1', WARREN_CLUSTER_NAME: 'prod',
      WARREN_CLUSTER_LEASE_TTL: '5', WARREN_CLUSTER_MIN_INSYNC: '2', WARREN_CLUSTER_FOLLOWER_TIMEOUT: '3000',
      WARREN_CLUSTER_TLS_CERT: 'c.pem', WARREN_CLUSTER_TLS_KEY: 'k.pem', WARREN_CLUSTER_TLS_CA: 'ca.pem',
    });
    const expected = {
      etcd: ['e1:2379'], advertise: '127.0.0.1', port: 5801, nodeId: 'n1', name: 'prod', leaseTtl: 5, minInsync: 2, followerAckTimeout: 3000,
      tls: { cert: 'c.pem', key: 'k.pem', ca: 'ca.pem' },
    };
    expect(flags.cluster).toEqual(expected);
    expect(env.cluster).toEqual(expected);
  });

  it('needs an advertised address when listening on every address, and sane values', () => {
    expect(usageError(['start', '--cluster-etcd', 'e1:2379']).message).toMatch(/needs --cluster-advertise/);
    expect(usageError(['start', '--cluster-etcd', 'not a url', '--cluster-advertise', 'h']).message).toMatch(/^invalid --cluster-etcd/);
    expect(usageError(['start', '--cluster-etcd', 'e:1', '--cluster-advertise', 'h', '--cluster-lease-ttl', '1']).message).toMatch(/^invalid --cluster-lease-ttl/);
    expect(usageError(['start', '--cluster-etcd', 'e:1', '--cluster-advertise', 'h', '--node-id', 'a/b']).message).toMatch(/^invalid --node-id/);
    expect(usageError(['start', '--cluster-etcd', 'e:1', '--cluster-advertise', 'h', '--cluster-tls-cert', 'c']).message).toMatch(/TLS needs/);
  });

  it('cluster status takes the etcd endpoints, the cluster name and --json', () => {
    expect(parseCli(['cluster', 'status', '--cluster-etcd', 'e1:2379,e2:2379', '--json'], {})).toEqual({
      command: 'cluster-status', etcd: ['e1:2379', 'e2:2379'], clusterName: 'warren', json: true,
    });
    expect(parseCli(['cluster', 'status'], { WARREN_CLUSTER_ETCD: 'e1:2379', WARREN_CLUSTER_NAME: 'x' })).toEqual({
      command: 'cluster-status', etcd: ['e1:2379'], clusterName: 'x', json: false,
    });
    expect(usageError(['cluster', 'status']).message).toMatch(/needs --cluster-etcd/);
    expect(usageError(['cluster', 'nope']).message).toMatch(/unknown cluster command/);
  });
});
