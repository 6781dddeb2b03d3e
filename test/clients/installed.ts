import { spawn, spawnSync } from 'node:child_process';
import type { TestContext } from 'vitest';

/** Whether `command args…` runs and exits 0 (e.g. `perl -MAnyEvent::RabbitMQ -e1`). */
export function runsOk(command: string, args: string[]): boolean {
  const r = spawnSync(command, args, { stdio: 'ignore', timeout: 30_000 });
  return r.status === 0;
}

/**
 * For a test that drives a real client from Debian: skips it, naming the package, when the
 * client is not installed on this machine. In CI (`CI` set, as .ci/run does), where .ci/run
 * installs every such package, a missing one fails the test instead.
 */
export function requireInstalled(ctx: TestContext, installed: boolean, debianPackage: string): void {
  if (installed) return;
  const message = `${debianPackage} is not installed: apt-get install -y ${debianPackage} (.ci/run installs it)`;
  if (process.env.CI) throw new Error(`CI must have every client installed: ${message}`);
  console.warn(`skipped: ${message}`);
  ctx.skip(message);
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a client program to its end (asynchronously: the broker under test shares this process). */
export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...options.env }, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
