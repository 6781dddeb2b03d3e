import { inject } from 'vitest';
import type { RunningBroker } from '../../src/index.js';

/**
 * Users, vhosts, permissions and limits for the access conformance tests, on either broker:
 * against RabbitMQ through its management HTTP API (AMQP_MANAGEMENT_URL, default
 * http://guest:guest@127.0.0.1:15672), against Warren through the broker API of a Warren
 * started for the test file (the suite's shared in-process Warren lives in another process).
 * `cleanup()` deletes everything created, so RabbitMQ is left as it was.
 */
export interface AccessAdmin {
  /** amqp://user:pass@host:port/vhost of the broker under test */
  url(user: string, password: string, vhost: string): string;
  addVhost(name: string): Promise<void>;
  deleteVhost(name: string): Promise<void>;
  addUser(name: string, password: string, tags?: string[]): Promise<void>;
  deleteUser(name: string): Promise<void>;
  setPermissions(user: string, vhost: string, configure: string, write: string, read: string): Promise<void>;
  setTopicPermissions(user: string, vhost: string, exchange: string, write: string, read: string): Promise<void>;
  setVhostLimit(vhost: string, limit: 'max-connections' | 'max-queues', value: number): Promise<void>;
  /** the broker's admin user, with full permissions on every vhost created here */
  readonly adminUser: { name: string; password: string };
  cleanup(): Promise<void>;
}

export async function accessAdmin(): Promise<AccessAdmin> {
  return inject('brokerKind') === 'warren' ? warrenAdmin() : rabbitAdmin(new URL(inject('amqpUrl')));
}

function amqpUrl(base: URL, user: string, password: string, vhost: string): string {
  const u = new URL(base.href);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  u.pathname = `/${encodeURIComponent(vhost)}`;
  return u.href;
}

async function warrenAdmin(): Promise<AccessAdmin> {
  const { startBroker } = await import('../../src/index.js');
  const broker: RunningBroker = await startBroker();
  const base = new URL(broker.url);
  const a = broker.admin;
  return {
    url: (user, password, vhost) => amqpUrl(base, user, password, vhost),
    adminUser: { name: 'guest', password: 'guest' },
    async addVhost(name) {
      await a.addVhost(name);
      await a.setPermissions('guest', name, { configure: '.*', write: '.*', read: '.*' });
    },
    deleteVhost: (name) => a.deleteVhost(name),
    addUser: (name, password, tags = []) => a.addUser(name, { password, tags }),
    deleteUser: (name) => a.deleteUser(name),
    setPermissions: (user, vhost, configure, write, read) => a.setPermissions(user, vhost, { configure, write, read }),
    setTopicPermissions: (user, vhost, exchange, write, read) => a.setTopicPermissions(user, vhost, { exchange, write, read }),
    setVhostLimit: (vhost, limit, value) => a.setVhostLimits(vhost, limit === 'max-connections' ? { maxConnections: value } : { maxQueues: value }),
    cleanup: () => broker.close(),
  };
}

async function rabbitAdmin(base: URL): Promise<AccessAdmin> {
  const api = new URL(process.env.AMQP_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672');
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(api.username)}:${decodeURIComponent(api.password)}`).toString('base64')}`;
  const vhosts = new Set<string>();
  const users = new Set<string>();
  const call = async (method: string, path: string, body?: unknown): Promise<void> => {
    const res = await fetch(`${api.origin}/api${path}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status >= 300 && !(method === 'DELETE' && res.status === 404)) {
      throw new Error(`management API ${method} ${path}: ${res.status} ${await res.text()}`);
    }
  };
  const e = encodeURIComponent;
  return {
    url: (user, password, vhost) => amqpUrl(base, user, password, vhost),
    adminUser: { name: decodeURIComponent(api.username), password: decodeURIComponent(api.password) },
    async addVhost(name) {
      vhosts.add(name);
      await call('PUT', `/vhosts/${e(name)}`);
      await call('PUT', `/permissions/${e(name)}/${e(decodeURIComponent(api.username))}`, { configure: '.*', write: '.*', read: '.*' });
    },
    async deleteVhost(name) {
      await call('DELETE', `/vhosts/${e(name)}`);
      vhosts.delete(name);
    },
    async addUser(name, password, tags = []) {
      users.add(name);
      await call('PUT', `/users/${e(name)}`, { password, tags: tags.join(',') });
    },
    async deleteUser(name) {
      await call('DELETE', `/users/${e(name)}`);
      users.delete(name);
    },
    setPermissions: (user, vhost, configure, write, read) => call('PUT', `/permissions/${e(vhost)}/${e(user)}`, { configure, write, read }),
    setTopicPermissions: (user, vhost, exchange, write, read) => call('PUT', `/topic-permissions/${e(vhost)}/${e(user)}`, { exchange, write, read }),
    setVhostLimit: (vhost, limit, value) => call('PUT', `/vhost-limits/${e(vhost)}/${limit}`, { value }),
    async cleanup() {
      for (const v of vhosts) await call('DELETE', `/vhosts/${e(v)}`);
      for (const u of users) await call('DELETE', `/users/${e(u)}`);
    },
  };
}
