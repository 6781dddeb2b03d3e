import { startBroker, type BrokerOptions, type RunningBroker } from '../../src/index.js';

export interface HttpBroker {
  readonly broker: RunningBroker;
  /** http://127.0.0.1:<management port> */
  readonly base: string;
  /** http://127.0.0.1:<metrics port> */
  readonly metrics: string;
  /** a request to the management API as guest (or `auth`), parsed */
  api(path: string, init?: RequestInit & { auth?: string | null }): Promise<ApiResponse>;
  close(): Promise<void>;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
}

export function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

/** A broker with the management API and metrics on ephemeral ports and a fast stats tick. */
export async function startHttpBroker(options: BrokerOptions = {}): Promise<HttpBroker> {
  const broker = await startBroker({ managementPort: 0, metricsPort: 0, statsInterval: 50, ...options });
  const base = `http://127.0.0.1:${broker.managementPort}`;
  return {
    broker,
    base,
    metrics: `http://127.0.0.1:${broker.metricsPort}`,
    async api(path, init = {}) {
      const { auth = basic('guest', 'guest'), headers, ...rest } = init;
      const h = new Headers(headers);
      if (auth !== null) h.set('authorization', auth);
      if (rest.body !== undefined && !h.has('content-type')) h.set('content-type', 'application/json');
      const res = await fetch(`${base}/api${path}`, { ...rest, headers: h });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = text === '' ? null : JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, headers: res.headers, text, body };
    },
    close: () => broker.close(),
  };
}

/** Polls `check` until it returns without throwing (stats appear on the next tick). */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
