// A process whose only work left is a LevelStore flush waiting on the store's retry (its
// writes fail): it must stay alive until the retry answers. Prints the outcome of the flush.
import { pino } from 'pino';
import { LevelStore } from '../../dist/store/level-store.js';

class FailingStore extends LevelStore {
  async writeOps() {
    throw Object.assign(new Error('EIO: simulated write failure'), { code: 'EIO' });
  }
}

const store = new FailingStore(process.argv[2], pino({ level: 'silent' }));
await store.open();
store.putVhost('/');
// the first commit fails; the store then retries on an unref'd timer
await store.flush().catch(() => {});
store.flush().then(
  () => console.log('flushed'),
  (err) => console.log(`flush failed: ${err.message}`),
);
