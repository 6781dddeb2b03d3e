import type { Logger } from 'pino';
import { AccessRegistry } from '../auth/access-registry.js';
import type { QueueStorage } from '../queue/queue-storage.js';
import { AccessStore } from '../store/access-records.js';
import type { CommitListener, Store } from '../store/store.js';
import { Vhost } from '../vhost/vhost.js';
import { DirectReplyRegistry } from './direct-reply-to.js';
import { RpcTracker } from '../stats/rpc.js';
import { PolicyRegistry } from './policy-registry.js';

/**
 * A client connection as the operations layer sees it (the AMQP Connection implements it):
 * counted for max-connections, closed when its vhost or user is deleted.
 */
export interface ClientConnection {
  readonly id: number;
  readonly username: string;
  readonly vhostName: string;
  /** 320 CONNECTION_FORCED with `text` (e.g. "vhost 'x' is deleted") */
  closeForced(text: string): void;
}

/** The store's group commit, as front ends may use it (publisher confirms, one listener per channel per batch). */
export interface Commits {
  readonly openBatchId: number;
  afterCommit(listener: CommitListener): void;
}

/** Told when the store has caught up (a connection held by flow control reads again). */
export interface FlowWaiter {
  flowRelieved(): void;
}

/**
 * Publisher flow control (RabbitMQ's connection state `flow`): while the store has more
 * handed to it than it has written (durable batches, spill writes), connections whose
 * publishes write to it are not read. It drains by itself, whatever clients do.
 */
export interface Flow {
  readonly saturated: boolean;
  /** `waiter` is told once the store is no longer saturated */
  waitForRelief(waiter: FlowWaiter): void;
  cancel(waiter: FlowWaiter): void;
}

export interface CoreOptions {
  readonly store: Store;
  readonly storage: QueueStorage;
  readonly logger: Logger;
  /** RabbitMQ's loopback_users: these users may only connect from 127.0.0.0/8 or ::1 */
  readonly loopbackUsers: readonly string[];
}

/**
 * What every operation works on: the vhosts (the model), users and permissions, open client
 * connections, direct reply-to addresses and the store's commits. One per broker; front ends
 * reach it only through the operations.
 */
export class Core {
  readonly vhosts = new Map<string, Vhost>();
  readonly access: AccessRegistry;
  readonly connections = new Map<number, ClientConnection>();
  readonly directReply = new DirectReplyRegistry();
  /** request/reply statistics (the management API's RPC view), fed by publish */
  readonly rpc = new RpcTracker();
  /** policies and operator policies of every vhost */
  readonly policies: PolicyRegistry;
  readonly store: Store;
  readonly storage: QueueStorage;
  readonly logger: Logger;
  readonly loopbackUsers: ReadonlySet<string>;
  readonly commits: Commits;
  readonly flow: Flow;
  private readonly accessStore: AccessStore;

  constructor(options: CoreOptions) {
    this.store = options.store;
    this.storage = options.storage;
    this.logger = options.logger;
    this.loopbackUsers = new Set(options.loopbackUsers);
    this.accessStore = new AccessStore(options.store);
    this.access = new AccessRegistry(this.accessStore);
    this.policies = new PolicyRegistry(options.store, this.vhosts);
    const store = options.store;
    this.flow = store.writeBehind;
    this.commits = {
      get openBatchId() {
        return store.openBatchId;
      },
      afterCommit: (listener) => store.afterCommit(listener),
    };
  }

  /** Startup: users, permissions, vhost metadata and limits as the store holds them. */
  async restoreAccess(): Promise<void> {
    this.access.restore(await this.accessStore.load());
  }

  /** The model object of a vhost, created on first use (recovery and vhost creation). */
  vhostObject(name: string): Vhost {
    let v = this.vhosts.get(name);
    if (v === undefined) {
      v = new Vhost(name, this.store, this.storage, this.logger);
      this.vhosts.set(name, v);
    }
    return v;
  }

  connectionCount(vhost: string): number {
    let n = 0;
    for (const c of this.connections.values()) if (c.vhostName === vhost) n++;
    return n;
  }

  /** Closes (320) every connection for which `match` holds. */
  closeConnections(match: (c: ClientConnection) => boolean, text: string): void {
    for (const c of [...this.connections.values()]) {
      if (!match(c)) continue;
      try {
        c.closeForced(text);
      } catch (err) {
        this.logger.error({ err, conn: c.id }, 'closing a connection failed');
      }
    }
  }
}
