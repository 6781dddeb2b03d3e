import { MemoryStore } from '../../src/store/memory-store.js';
import { runStoreContract } from './store-contract.js';

runStoreContract('memory', async () => {
  const store = new MemoryStore();
  await store.open();
  return {
    store,
    // the data lives as long as the instance: close + open is a restart
    reopen: async () => {
      await store.close();
      await store.open();
      return store;
    },
  };
});
