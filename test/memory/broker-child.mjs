// A broker in a process of its own (the built dist/), so a test can see what that process
// really holds: started with `fork`, it sends { url } once listening, answers 'measure' with
// process.memoryUsage() (after a full GC when run with --expose-gc), and stops on 'close'.
import { startBroker } from '../../dist/index.js';

const broker = await startBroker({ port: 0 });
process.on('message', (m) => {
  if (m === 'measure') {
    globalThis.gc?.();
    process.send({ memory: process.memoryUsage() });
  } else if (m === 'close') {
    void broker.close().then(() => process.exit(0));
  }
});
process.send({ url: broker.url });
