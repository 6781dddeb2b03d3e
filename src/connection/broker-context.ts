import type { Logger } from 'pino';
import type { WarrenConfig } from '../config/config.js';
import type { Core } from '../operations/core.js';
import type { FieldTable } from '../protocol/field-types.js';
import type { BusyPoll } from '../transport/busy-poll.js';
import type { Channel } from './channel.js';
import type { Connection } from './connection.js';

/** What a connection needs from the broker (injected; connections never reach for globals). */
export interface BrokerContext {
  readonly config: WarrenConfig;
  readonly logger: Logger;
  /** what the operations work on: connections call operations with it, nothing else */
  readonly core: Core;
  readonly serverProperties: FieldTable;
  /** the reason publishers are blocked (a resource alarm is set), or null */
  readonly blockedReason: string | null;
  /** keeps the event loop polling for a moment after each socket read (transport/busy-poll.ts) */
  readonly busyPoll: BusyPoll;
  /** every socket, from accept to close (shutdown, ticks) */
  connectionOpened(conn: Connection): void;
  connectionClosed(conn: Connection): void;
  /** a channel was opened (its statistics are followed until it is gone) */
  channelOpened(ch: Channel): void;
}
