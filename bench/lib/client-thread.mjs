// Coordinator side of client-worker.mjs: a producer or consumer in its own worker
// thread. A ClientGroup shares one progress array across its threads, so
// `group.total()` is the number published / received so far without any messages.
import { Worker } from 'node:worker_threads';

const WORKER_URL = new URL('./client-worker.mjs', import.meta.url);
const REPLY_TIMEOUT_MS = 30_000;

export class ClientThread {
  constructor(role, options, progress, slot) {
    this.role = role;
    this.worker = new Worker(WORKER_URL, { workerData: { role, options, progress, slot } });
    this.exitError = null;
    /** type → { resolve, reject } for the one reply we wait for */
    this.waiting = new Map();
    this.worker.on('message', (msg) => this.onMessage(msg));
    this.worker.on('error', (err) => this.onExit(err));
    this.worker.on('exit', (code) => this.onExit(new Error(`${role} thread exited with code ${code}`)));
  }

  onMessage(msg) {
    if (msg.type === 'failed') {
      this.onExit(new Error(`${this.role}: ${msg.error}`));
      return;
    }
    const w = this.waiting.get(msg.type);
    if (w !== undefined) {
      this.waiting.delete(msg.type);
      w.resolve(msg);
    }
  }

  onExit(err) {
    if (this.exitError === null) this.exitError = err;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.reject(err);
  }

  /** Resolves with the next message of `type`, bounded by `timeoutMs`. */
  reply(type, timeoutMs = REPLY_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      if (this.exitError !== null) {
        reject(this.exitError);
        return;
      }
      const timer = setTimeout(() => {
        this.waiting.delete(type);
        reject(new Error(`${this.role} thread: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(type, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /** A message that gets no reply of its own (e.g. 'halt'). */
  post(msg) {
    if (this.exitError === null) this.worker.postMessage(msg);
  }

  send(msg, replyType, timeoutMs) {
    const p = this.reply(replyType, timeoutMs);
    this.worker.postMessage(msg);
    return p;
  }

  /** Closes the client and collects its result; the thread then ends. Never throws. */
  async stop(timeoutMs = REPLY_TIMEOUT_MS) {
    try {
      return await this.send({ type: 'stop' }, 'result', timeoutMs);
    } catch (err) {
      await this.worker.terminate();
      return { type: 'result', error: err.message };
    }
  }
}

export class ClientGroup {
  /** @param {number} capacity most threads this group will hold */
  constructor(capacity) {
    this.progress = new SharedArrayBuffer(4 * Math.max(1, capacity));
    this.counters = new Int32Array(this.progress);
    this.threads = [];
  }

  /** Starts a thread and waits until its connection (and channel) is open. */
  async add(role, options) {
    const t = new ClientThread(role, options, this.progress, this.threads.length);
    this.threads.push(t);
    await t.reply('opened');
    return t;
  }

  /** Published (producers) or received (consumers) so far, summed over the group. */
  total() {
    let n = 0;
    for (let i = 0; i < this.threads.length; i++) n += Atomics.load(this.counters, i);
    return n;
  }

  async stopAll(timeoutMs = REPLY_TIMEOUT_MS) {
    return Promise.all(this.threads.map((t) => t.stop(timeoutMs)));
  }
}
