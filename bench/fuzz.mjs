#!/usr/bin/env node
// The long fuzz run: the same seeded sessions as test/fuzz/malformed-input.test.ts (damaged
// sessions and content headers of random structure, against an in-memory and a LevelDB
// broker), many more of them. Fails, listing the seeds, on any internal error.
//   npm run fuzz -- --sessions 100000 [--first-seed 1] [--concurrency 4]
// A finding names its seed: rerun it alone with --first-seed <seed> --sessions 1.
// It keeps both cores busy: run it under `flock /tmp/bench.lock` on a shared machine.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '100000' },
    'first-seed': { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '4' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('Usage: npm run fuzz -- [--sessions 100000] [--first-seed 1] [--concurrency 4]');
  process.exit(0);
}
for (const k of ['sessions', 'first-seed', 'concurrency']) {
  if (!/^\d+$/.test(values[k]) || Number(values[k]) < 1) {
    console.error(`fuzz: --${k} must be a positive integer, got ${values[k]}`);
    process.exit(2);
  }
}

const root = fileURLToPath(new URL('..', import.meta.url));
const vitest = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));
const started = Date.now();
console.error(`fuzz: ${values.sessions} sessions from seed ${values['first-seed']}, ${values.concurrency} at a time, per broker kind`);
const child = spawn(
  process.execPath,
  [vitest, 'run', '--project', 'unit', 'test/fuzz/malformed-input.test.ts', '-t', 'seeded sessions'],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      WARREN_FUZZ_SESSIONS: values.sessions,
      WARREN_FUZZ_FIRST_SEED: values['first-seed'],
      WARREN_FUZZ_CONCURRENCY: values.concurrency,
    },
  },
);
child.on('close', (code) => {
  console.error(`fuzz: ${code === 0 ? 'no findings' : 'FINDINGS (see above)'} after ${((Date.now() - started) / 1000).toFixed(0)} s`);
  process.exit(code ?? 1);
});
