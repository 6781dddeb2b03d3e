import type { Logger } from 'pino';
import type { UserStore } from '../auth/user-store.js';
import type { WarrenConfig } from '../config/config.js';
import type { FieldTable } from '../protocol/field-types.js';
import type { Store } from '../store/store.js';
import type { Vhost } from '../vhost/vhost.js';
import type { Connection } from './connection.js';

/** What a connection needs from the broker (injected; connections never reach for globals). */
export interface BrokerContext {
  readonly config: WarrenConfig;
  readonly logger: Logger;
  readonly users: UserStore;
  readonly vhosts: ReadonlyMap<string, Vhost>;
  readonly serverProperties: FieldTable;
  readonly store: Store;
  /** the reason publishers are blocked (a resource alarm is set), or null */
  readonly blockedReason: string | null;
  connectionOpened(conn: Connection): void;
  connectionClosed(conn: Connection): void;
  /** direct reply-to: find the channel a token names */
  findConnection(id: number): Connection | undefined;
}
