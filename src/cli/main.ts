#!/usr/bin/env -S node --single-threaded-gc --initial-old-space-size=128
// The `warren` executable (package.json "bin" → dist/cli/main.js). Kept thin: all
// behaviour lives in run-cli.ts so it can be tested without spawning processes. The #! line
// passes the broker's V8 flags (node-flags.ts; `env -S` splits them).
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runCli } from './run-cli.js';

// The broker process's GC: V8 lets the old generation grow to up to about twice what was live
// after the last full collection before collecting again. Queued messages are long-lived JS
// objects, and paging them out leaves them as old garbage, so by default a broker holding a
// backlog sat at about twice its live heap in RSS. A 1.5 growth factor keeps it near 1.5x
// (1M x 16 B backlog: peak RSS about 0.65x of the default's; fill and drain rates unchanged
// within noise, see bench/results). Set here, for the executable only: an application
// embedding Warren keeps its own GC settings. NODE_OPTIONS=--heap-growing-percent=N overrides.
if (!/--heap-growing-percent/.test(process.env.NODE_OPTIONS ?? '') && !process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) {
  setFlagsFromString('--heap-growing-percent=50');
}

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
