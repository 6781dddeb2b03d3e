import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';

// The broker core (src/index.ts) is written in parallel; until it exists there is nothing to run.
const coreExists = existsSync(new URL('../../src/index.ts', import.meta.url));

describe.skipIf(!coreExists)('warren start with the real broker', () => {
  let dataDir: string | undefined;
  afterEach(async () => {
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });

  it('listens on an ephemeral port, logs the url, and SIGTERM closes clients with 320 then exits 0', async () => {
    const { startBroker } = await import('../../src/index.js');
    dataDir = await mkdtemp(join(tmpdir(), 'warren-cli-'));
    const logs: Array<Record<string, unknown>> = [];
    const signals = new EventEmitter();
    let listening!: (line: Record<string, unknown>) => void;
    const listeningLine = new Promise<Record<string, unknown>>((resolve) => (listening = resolve));
    let exited!: (code: number) => void;
    const exitCode = new Promise<number>((resolve) => (exited = resolve));

    await runCli(['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--management-port', '0', '--metrics-port', '0'], {}, {
      stdout: { write: () => true },
      stderr: { write: () => true },
      logDestination: {
        write: (s: string) => {
          const line = JSON.parse(s) as Record<string, unknown>;
          logs.push(line);
          if (line.msg === 'Warren listening') listening(line);
        },
      },
      startBroker,
      signals,
      exit: (code) => exited(code),
      version: 'test',
    });

    const line = await listeningLine;
    expect(line.port).toEqual(expect.any(Number));
    expect(line.port).not.toBe(0);
    expect(line.url).toBe(`amqp://127.0.0.1:${String(line.port)}`);

    const connection = await connect(line.url as string);
    const closed = new Promise<unknown>((resolve) => connection.on('close', resolve));
    connection.on('error', () => {}); // the forced close is reported as an error too
    signals.emit('SIGTERM');

    expect(await exitCode).toBe(0);
    const err = (await closed) as { code?: number } | undefined;
    expect(err?.code).toBe(320);
    expect(logs.map((l) => l.msg)).toContain('Warren stopped');
  });
});
