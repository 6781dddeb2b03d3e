// `warren start` (the real CLI: runCli, signals, process.exit) over a LevelStore whose writes
// fail once a batch holds a message whose body contains FAIL_MARKER, for as long as that
// batch is retried: the store then fails persistently, as on a full or broken disk.
import { Broker } from '../../dist/broker.js';
import { runCli } from '../../dist/cli/run-cli.js';
import { resolveConfig } from '../../dist/config/config.js';
import { LevelStore } from '../../dist/store/level-store.js';

const FAIL_MARKER = Buffer.from('make-the-store-fail');

class FailingStore extends LevelStore {
  async writeOps(ops, options, db) {
    if (ops.some((op) => op.type === 'put' && op.value.includes(FAIL_MARKER))) {
      const err = new Error('EIO: simulated write failure');
      err.code = 'EIO';
      throw err;
    }
    return super.writeOps(ops, options, db);
  }
}

await runCli(process.argv.slice(2), process.env, {
  stdout: process.stdout,
  stderr: process.stderr,
  startBroker: async ({ logger, ...options }) => {
    const config = resolveConfig(options);
    const store = new FailingStore(config.dataDir, logger.child({ component: 'store' }));
    return new Broker(config, logger, store).start();
  },
  signals: process,
  exit: (code) => process.exit(code),
  version: 'failing-store-test',
});
