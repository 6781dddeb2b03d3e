import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { etcdUrl } from './etcd-url.js';

const httpAgent = new HttpAgent({ keepAlive: true });
const httpsAgent = new HttpsAgent({ keepAlive: true });

/**
 * one POST with a JSON body, answered with the status and the whole body. node:http, not
 * fetch: a keepalive goes out every 200 ms from every node, and fetch (undici, WHATWG
 * streams) cost about 2-3 ms of CPU per call against ~1 ms here, measured on the benchmark
 * machine: CPU every node's replicated throughput pays for on shared cores.
 */
function post(url: string, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  const https = u.protocol === 'https:';
  return new Promise((resolve, reject) => {
    // the promise settles exactly once, at the latest when the timer fires: a timer of our
    // own, not AbortSignal.timeout() (a lease call that never settled would leave the node
    // without a lease for good: one resumed cluster node went silent that way, unexplained)
    let settled = false;
    const settle = (err: Error | null, value?: { status: number; text: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== null) reject(err);
      else resolve(value!);
    };
    const req = (https ? httpsRequest : httpRequest)(
      u,
      {
        method: 'POST',
        agent: https ? httpsAgent : httpAgent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res: IncomingMessage) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => settle(null, { status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
        res.on('error', (e) => settle(e));
        res.on('close', () => settle(new Error(`etcd ${u.pathname}: the answer ended early`)));
      },
    );
    const timer = setTimeout(() => {
      const err = new Error(`etcd ${u.pathname}: no answer within ${timeoutMs} ms`);
      settle(err);
      req.destroy(err);
    }, timeoutMs);
    timer.unref();
    req.on('error', (e) => settle(e));
    req.end(body);
  });
}

/**
 * Lease calls (grant, keepalive, revoke) over etcd's JSON gateway (`POST /v3/lease/…`): one
 * plain HTTP request each, with its own timeout, to one endpoint at a time, moving to the
 * next endpoint after a failure.
 *
 * Why not the gRPC client for these: keepalives decide whether the leader may confirm, so
 * they must never wait behind a gRPC channel's reconnect backoff or a circuit breaker when
 * an etcd member dies. Measured on the test harness (3 etcd members, raft leader killed): the
 * etcd3 client's keepaliveOnce let the lease deadline pass in 1 of 6 kills behind a TCP
 * forwarder and 3 of 10 under load; independent HTTP round trips did not.
 */
export class EtcdLeaseClient {
  private readonly endpoints: string[];
  private current = 0;

  constructor(endpoints: readonly string[]) {
    this.endpoints = endpoints.map(etcdUrl);
  }

  /**
   * `skip` > 0 sends to the endpoint that many after the current one (a retry while an
   * earlier call is still unanswered: that member may be waiting for an etcd leader, another
   * may already know it). An endpoint that answers becomes the current one.
   */
  private async call(path: string, body: unknown, timeoutMs: number, skip = 0): Promise<Record<string, unknown>> {
    const at = this.current + skip;
    const endpoint = this.endpoints[at % this.endpoints.length]!;
    try {
      const { status, text } = await post(`${endpoint}${path}`, JSON.stringify(body), timeoutMs);
      if (status < 200 || status > 299) throw new Error(`etcd ${path}: HTTP ${status} ${text.slice(0, 200)}`);
      // keepalive is a stream on the gateway: the answer is the first line's "result"
      const first = JSON.parse(text.split('\n', 1)[0]!) as { result?: Record<string, unknown>; error?: unknown } & Record<string, unknown>;
      if (first.error !== undefined) throw new Error(`etcd ${path}: ${JSON.stringify(first.error).slice(0, 200)}`);
      if (skip > 0) this.current = at % this.endpoints.length;
      return first.result ?? first;
    } catch (err) {
      // this endpoint failed or was slow: the next call tries the next one
      if (this.current === at) this.current = at + 1;
      throw err;
    }
  }

  /** grants a lease; returns its id (decimal string) and the TTL etcd granted */
  async grant(ttl: number, timeoutMs: number): Promise<{ id: string; ttl: number }> {
    const r = await this.call('/v3/lease/grant', { TTL: ttl }, timeoutMs);
    const id = String(r.ID ?? '');
    if (!/^[0-9]+$/.test(id)) throw new Error(`etcd lease grant: unexpected answer ${JSON.stringify(r).slice(0, 200)}`);
    return { id, ttl: Number(r.TTL ?? ttl) };
  }

  /** renews the lease; resolves with its remaining TTL (s), 0 when etcd no longer has it */
  async keepalive(id: string, timeoutMs: number, skip = 0): Promise<number> {
    const r = await this.call('/v3/lease/keepalive', { ID: id }, timeoutMs, skip);
    return Number(r.TTL ?? 0);
  }

  /**
   * How many etcd members answer a status request within `timeoutMs` (each asked at once,
   * directly). A member answers it by itself, leader or not: a majority answering means etcd
   * is reachable (an etcd leader election, not a partition, when keepalives go unanswered).
   */
  async reachable(timeoutMs: number): Promise<number> {
    const answers = await Promise.all(
      this.endpoints.map((e) =>
        post(`${e}/v3/maintenance/status`, '{}', timeoutMs).then(
          ({ status }) => status >= 200 && status <= 299,
          () => false,
        ),
      ),
    );
    return answers.filter(Boolean).length;
  }

  get size(): number {
    return this.endpoints.length;
  }

  async revoke(id: string, timeoutMs: number): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: id }, timeoutMs);
  }
}
