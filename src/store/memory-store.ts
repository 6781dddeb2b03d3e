import type { BindingRecord, ExchangeRecord, QueueRecord, Store, Topology } from './store.js';

const bindingKey = (b: BindingRecord): string =>
  JSON.stringify([b.vhost, b.source, b.destinationKind, b.destination, b.routingKey, [...b.arguments.keys()].sort()]);

/**
 * Keeps topology records in memory for the life of the process: the store for
 * in-memory brokers (startBroker in tests) and the reference for the store contract.
 */
export class MemoryStore implements Store {
  private readonly vhosts = new Set<string>();
  private readonly exchanges = new Map<string, ExchangeRecord>();
  private readonly queues = new Map<string, QueueRecord>();
  private readonly bindings = new Map<string, BindingRecord>();

  async open(): Promise<void> {}
  async close(): Promise<void> {}

  async loadTopology(): Promise<Topology> {
    return {
      vhosts: [...this.vhosts],
      exchanges: [...this.exchanges.values()],
      queues: [...this.queues.values()],
      bindings: [...this.bindings.values()],
    };
  }

  putVhost(name: string): void {
    this.vhosts.add(name);
  }
  putExchange(record: ExchangeRecord): void {
    this.exchanges.set(`${record.vhost}\0${record.name}`, record);
  }
  deleteExchange(vhost: string, name: string): void {
    this.exchanges.delete(`${vhost}\0${name}`);
  }
  putQueue(record: QueueRecord): void {
    this.queues.set(`${record.vhost}\0${record.name}`, record);
  }
  deleteQueue(vhost: string, name: string): void {
    this.queues.delete(`${vhost}\0${name}`);
  }
  putBinding(record: BindingRecord): void {
    this.bindings.set(bindingKey(record), record);
  }
  deleteBinding(record: BindingRecord): void {
    this.bindings.delete(bindingKey(record));
  }
  async flush(): Promise<void> {}
}
