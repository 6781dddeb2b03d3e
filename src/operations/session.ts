import type { Queue } from '../queue/queue.js';
import type { Vhost } from '../vhost/vhost.js';
import type { Core } from './core.js';

/** Who is acting, as authenticated (tags as the user had them at login). */
export interface AuthenticatedUser {
  readonly name: string;
  readonly tags: readonly string[];
  /** the broker itself (its API, definitions at boot): every check passes */
  readonly system?: boolean;
}

/** The broker acting on its own behalf (broker API, definitions loaded at boot). */
export const SYSTEM_USER: AuthenticatedUser = Object.freeze({ name: 'warren-internal', tags: Object.freeze(['administrator']), system: true });

/** A caller of the administrative operations (users, vhosts, permissions, limits). */
export interface Actor {
  readonly core: Core;
  readonly user: AuthenticatedUser;
}

/**
 * A user working in one vhost: an AMQP connection after connection.open, or one HTTP
 * request of the management API. `owner` is set for connections (exclusive queues belong
 * to it and go with it); HTTP sessions have none.
 */
export class Session implements Actor {
  /** exclusive queues declared through this session; deleted when it ends */
  readonly exclusiveQueues = new Set<Queue>();

  constructor(
    readonly core: Core,
    readonly user: AuthenticatedUser,
    readonly vhost: Vhost,
    /** the connection identity for exclusive queues; null = no exclusive queues (HTTP) */
    readonly owner: object | null,
  ) {}
}
