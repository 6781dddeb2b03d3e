#!/usr/bin/env node
// What Warren's store integrity costs at a start and a stop (issue #10): the files check (every
// table block's CRC), the hard-link snapshot, the count of the store, against LevelDB's own open
// and recovery's index scan. Builds a store of N persistent messages of SIZE bytes in one durable
// queue through LevelStore (no AMQP), stops it cleanly, then times each step of a start.
//
//   npm run build && flock /tmp/bench.lock node bench/store-open.mjs [--count 1000000] [--size 1024]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Level } from 'level';
import pino from 'pino';
import { LevelStore } from '../dist/store/level-store.js';
import { checkStoreFiles } from '../dist/store/store-files-check.js';
import { takeSnapshot, dropSnapshot } from '../dist/store/file-snapshot.js';
import { countStore } from '../dist/store/store-integrity.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '1000000' }, size: { type: 'string', default: '1024' }, dir: { type: 'string' } } });
const count = Number(values.count);
const size = Number(values.size);
const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'warren-store-open-')));
const logger = pino({ level: 'silent' });
const props = Buffer.from([0x10, 0x00, 0x02]); // delivery-mode 2
const ms = (t) => Math.round(performance.now() - t);

let t = performance.now();
const store = new LevelStore(dir, logger);
await store.open();
store.putVhost('/');
store.putQueue({ vhost: '/', name: 'q', id: 1, autoDelete: false, arguments: new Map() });
// incompressible bodies (LevelDB snappy-compresses its blocks): slices of a random pool
const pool = randomBytes(64 * 1048576 + size);
for (let i = 1; i <= count; i++) {
  const at = (i * 7919 * 64) % (pool.length - size);
  const body = pool.subarray(at, at + size);
  const messageId = store.putMessage({ exchange: '', routingKey: 'q', rawProperties: props, body });
  store.putEntry({ queueId: 1, priority: 0, seq: i, messageId, refs: 1, redelivered: false, transient: false, expiresAt: 0 });
  if (i % 5000 === 0) await store.flush();
}
await store.flush();
const fillMs = ms(t);
t = performance.now();
await store.close();
const closeMs = ms(t);

const out = { count, size, fillMs, closeMsWithCount: closeMs };
t = performance.now();
const check = await checkStoreFiles(dir, null);
out.filesCheckMs = ms(t);
out.tableMiB = Math.round(check.tableBytes / 1048576);
out.files = check.files.size;
t = performance.now();
const snap = await takeSnapshot(dir);
out.snapshotMs = ms(t);
t = performance.now();
await dropSnapshot(snap);
out.dropSnapshotMs = ms(t);
const raw = new Level(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
t = performance.now();
await raw.open();
out.levelOpenMs = ms(t);
t = performance.now();
await countStore(raw);
out.countMs = ms(t); // what a clean close adds (index scan with values)
await raw.close();
const again = new LevelStore(dir, logger);
t = performance.now();
await again.open();
out.storeOpenMs = ms(t);
t = performance.now();
await again.recover();
out.recoverMs = ms(t);
t = performance.now();
await again.close();
out.closeMs = ms(t);
console.log(JSON.stringify(out));
if (values.dir === undefined) await rm(dir, { recursive: true, force: true });
