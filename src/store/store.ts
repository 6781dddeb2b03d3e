import type { FieldTable } from '../protocol/field-types.js';

/** Durable topology as the store records it (only durable things are written). */
export interface ExchangeRecord {
  readonly vhost: string;
  readonly name: string;
  readonly type: string;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: FieldTable;
}

export interface QueueRecord {
  readonly vhost: string;
  readonly name: string;
  readonly autoDelete: boolean;
  readonly arguments: FieldTable;
}

export interface BindingRecord {
  readonly vhost: string;
  readonly source: string;
  readonly destination: string;
  readonly destinationKind: 'queue' | 'exchange';
  readonly routingKey: string;
  readonly arguments: FieldTable;
}

export interface Topology {
  readonly vhosts: readonly string[];
  readonly exchanges: readonly ExchangeRecord[];
  readonly queues: readonly QueueRecord[];
  readonly bindings: readonly BindingRecord[];
}

/**
 * The broker's storage seam. The model calls the put/delete methods synchronously
 * (they are queued into the store's next batch); `flush()` resolves when everything
 * queued so far is durable. Backends: memory (tests, in-memory brokers) and level.
 */
export interface Store {
  open(): Promise<void>;
  close(): Promise<void>;
  loadTopology(): Promise<Topology>;
  putVhost(name: string): void;
  putExchange(record: ExchangeRecord): void;
  deleteExchange(vhost: string, name: string): void;
  putQueue(record: QueueRecord): void;
  deleteQueue(vhost: string, name: string): void;
  putBinding(record: BindingRecord): void;
  deleteBinding(record: BindingRecord): void;
  flush(): Promise<void>;
}
