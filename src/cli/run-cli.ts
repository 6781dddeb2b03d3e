import type { DestinationStream, Logger } from 'pino';
import type { WarrenConfig } from '../config/config.js';
import { createLogger } from '../logging/logger.js';
import { CliUsageError, parseCli, USAGE } from './parse-args.js';
import { runCtl } from './ctl.js';

/** What the CLI needs from a started broker (a structural subset of `RunningBroker` from src/index.ts). */
export interface CliBroker {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(reason?: string): Promise<void>;
}

export type CliStartBroker = (options: Partial<WarrenConfig> & { logger: Logger }) => Promise<CliBroker>;

/** `warren cluster status`: what etcd says about a cluster (see cluster/etcd-coordinator.ts). */
export interface CliClusterStatus {
  readonly leader: string | null;
  readonly term: number | null;
  readonly isr: readonly string[];
  readonly nodes: readonly { readonly id: string; readonly amqp: string; readonly role: string }[];
}

type ShutdownSignal = 'SIGINT' | 'SIGTERM';

/** Everything `runCli` touches in the outside world; main.ts passes the real process, tests pass fakes. */
export interface CliIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
  /** Where JSON log lines go; pino's stdout destination when omitted. */
  readonly logDestination?: DestinationStream;
  readonly startBroker: CliStartBroker;
  /** `process` in production ('beforeExit': the event loop ran dry). */
  readonly signals: { on(event: ShutdownSignal | 'beforeExit', listener: () => void): unknown };
  /** reads a cluster's state from etcd (loaded lazily by main.ts: the etcd client is not needed otherwise) */
  readonly clusterStatus?: (etcd: readonly string[], clusterName: string) => Promise<CliClusterStatus>;
  /** `process.exit` in production; runCli calls it exactly once per outcome. */
  readonly exit: (code: number) => void;
  readonly version: string;
}

export const EXIT_OK = 0;
/** Startup or shutdown failed. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** Conventional 128 + SIGINT: the user insisted, so we stop without a clean shutdown. */
export const EXIT_FORCED = 130;

export const SHUTDOWN_REASON = 'broker shutdown';

/**
 * Runs the `warren` command. Resolves once the outcome is settled: help/version/usage
 * error printed, startup failed, or the broker is listening (it then runs until a signal).
 */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<void> {
  if (argv[0] === 'ctl') {
    io.exit(await runCtl(argv.slice(1), env, io));
    return;
  }
  let parsed;
  try {
    parsed = parseCli(argv, env);
  } catch (err) {
    if (!(err instanceof CliUsageError)) throw err;
    io.stderr.write(`warren: ${err.message}\n`);
    io.exit(EXIT_USAGE);
    return;
  }
  if ('help' in parsed) {
    io.stdout.write(USAGE);
    io.exit(EXIT_OK);
    return;
  }
  if ('version' in parsed) {
    io.stdout.write(`${io.version}\n`);
    io.exit(EXIT_OK);
    return;
  }

  if (parsed.command === 'cluster-status') {
    await printClusterStatus(parsed, io);
    return;
  }
  const { config } = parsed;
  const human =
    config.logFormat === 'pretty' ||
    (config.logFormat === 'auto' && io.logDestination === undefined && (io.stdout as { isTTY?: boolean }).isTTY === true);
  const logger = createLogger(config.logLevel, io.logDestination, human);
  logger.debug({ config, version: io.version }, 'Warren starting');

  let broker: CliBroker | undefined;
  let stopping = false;

  let shuttingDown = false;
  const shutdown = (running: CliBroker): void => {
    shuttingDown = true;
    running.close(SHUTDOWN_REASON).then(
      () => {
        logger.info('Warren stopped');
        io.exit(EXIT_OK);
      },
      (err: unknown) => {
        // e.g. the store could not write what was pending: a supervisor must not see a clean stop
        const message = err instanceof Error ? err.message : String(err);
        logger.error({ err }, `Warren shutdown failed: ${message}`);
        if (!logger.isLevelEnabled('error')) io.stderr.write(`warren: shutdown failed: ${message}\n`);
        io.exit(EXIT_FAILURE);
      },
    );
  };
  // A shutdown that can never finish (it waits on something that no longer keeps the
  // process alive) would otherwise end in a silent exit 0 when the event loop runs dry.
  io.signals.on('beforeExit', () => {
    if (!shuttingDown) return;
    logger.error('Warren shutdown did not complete: the process ran out of work while waiting for it');
    if (!logger.isLevelEnabled('error')) io.stderr.write('warren: shutdown did not complete\n');
    io.exit(EXIT_FAILURE);
  });

  const onSignal = (signal: ShutdownSignal): void => {
    if (stopping) {
      logger.warn({ signal }, 'Warren forced to exit');
      io.exit(EXIT_FORCED);
      return;
    }
    stopping = true;
    logger.info({ signal }, 'Warren shutting down');
    // A signal during startup is honoured once the broker is up (see below).
    if (broker !== undefined) shutdown(broker);
  };
  io.signals.on('SIGINT', () => onSignal('SIGINT'));
  io.signals.on('SIGTERM', () => onSignal('SIGTERM'));

  try {
    broker = await io.startBroker({ ...config, logger });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.error({ err }, `Warren failed to start: ${message}`);
    // A silenced logger must not turn a failed start into a silent exit 1.
    if (!logger.isLevelEnabled('error')) io.stderr.write(`warren: failed to start: ${message}\n`);
    io.exit(EXIT_FAILURE);
    return;
  }
  logger.info(
    { url: withoutCredentials(broker.url), host: broker.host, port: broker.port, dataDir: config.dataDir, version: io.version },
    'Warren listening',
  );
  if (stopping) shutdown(broker);
}

async function printClusterStatus(cmd: { etcd: readonly string[]; clusterName: string; json: boolean }, io: CliIo): Promise<void> {
  if (io.clusterStatus === undefined) {
    io.stderr.write('warren: cluster status is not available here\n');
    io.exit(EXIT_FAILURE);
    return;
  }
  let status: CliClusterStatus;
  try {
    status = await io.clusterStatus(cmd.etcd, cmd.clusterName);
  } catch (err) {
    io.stderr.write(`warren: cannot read the cluster from etcd: ${err instanceof Error ? err.message : String(err)}\n`);
    io.exit(EXIT_FAILURE);
    return;
  }
  const nodes = status.nodes.map((n) => ({ id: n.id, amqp: n.amqp, role: n.role }));
  if (cmd.json) {
    io.stdout.write(`${JSON.stringify({ leader: status.leader, term: status.term, isr: status.isr, nodes })}\n`);
  } else {
    const lines = [`leader: ${status.leader ?? '(none)'}${status.term === null ? '' : ` (term ${status.term})`}`, `isr:    ${status.isr.join(', ') || '(none)'}`, 'nodes:'];
    for (const n of nodes) lines.push(`  ${n.id.padEnd(16)} ${n.amqp.padEnd(24)} ${n.role}`);
    io.stdout.write(`${lines.join('\n')}\n`);
  }
  io.exit(EXIT_OK);
}

/** Log lines must not carry credentials, even the well-known guest ones a URL may embed. */
function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1');
}
