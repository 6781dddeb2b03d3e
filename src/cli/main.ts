#!/usr/bin/env node
// The `warren` executable (package.json "bin" → dist/cli/main.js). Kept thin: all
// behaviour lives in run-cli.ts so it can be tested without spawning processes.
import { readFileSync } from 'node:fs';
import { runCli } from './run-cli.js';

// src/cli/main.ts and dist/cli/main.js are both two levels below package.json.
const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

await runCli(process.argv.slice(2), process.env, {
  stdout: process.stdout,
  stderr: process.stderr,
  // Loaded lazily so `warren --help` does not pull in the whole broker.
  startBroker: async (options) => (await import('../index.js')).startWarren(options),
  clusterStatus: async (etcd, clusterName) => (await import('../index.js')).readClusterStatus(etcd, clusterName),
  signals: process,
  exit: (code) => process.exit(code),
  version: packageJson.version,
});
