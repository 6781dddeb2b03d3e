import type { FieldTable } from '../protocol/field-types.js';
import type { Queue } from '../queue/queue.js';
import { ConsistentHashTable, consistentHashOptions } from '../routing/consistent-hash-table.js';
import type { RoutingTable } from '../routing/routing-table.js';
import { createRoutingTable } from '../routing/routing-table.js';
import { delayedExchangeType } from '../delayed/delayed-message-arguments.js';
import { ExchangeCounters } from '../stats/counters.js';

/** The four AMQP routing types. */
export type RoutingType = 'direct' | 'fanout' | 'topic' | 'headers';
/** Every declarable type: the AMQP ones plus the plugin types Warren has built in. */
export type ExchangeType = RoutingType | 'x-consistent-hash' | 'x-delayed-message';
const ROUTING_TYPES: ReadonlySet<string> = new Set<RoutingType>(['direct', 'fanout', 'topic', 'headers']);
export const EXCHANGE_TYPES: ReadonlySet<string> = new Set<ExchangeType>([
  'direct',
  'fanout',
  'topic',
  'headers',
  'x-consistent-hash',
  'x-delayed-message',
]);

/** Where a binding points: a queue, or another exchange (exchange.bind). */
export type Destination = Queue | Exchange;

export interface ExchangeOptions {
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly arguments: FieldTable;
}

/**
 * An exchange: its declaration and its routing table, compiled at bind time.
 * The default exchange ("") has no table: the vhost routes it by queue name.
 * x-delayed-message routes with the table of its x-delayed-type once a message is due.
 */
export class Exchange {
  readonly kind = 'exchange' as const;
  readonly table: RoutingTable<Destination>;
  /** the table routes on message headers (headers type, consistent hash on a header) */
  readonly routesOnHeaders: boolean;
  /** consistent hash on a property: route with routeMessage() and the decoded properties */
  readonly hashTable: ConsistentHashTable<Destination> | null = null;
  /** x-delayed-message: messages with a positive x-delay are held before routing */
  readonly delayed: boolean;
  /** the alternate-exchange argument: where messages this exchange cannot route go */
  alternateExchange: string | undefined;
  /** bindings in which this exchange is the destination (exchange.bind … destination=this) */
  inboundBindings = 0;
  deleted = false;
  /** message statistics (read by the stats tick) */
  readonly stats = new ExchangeCounters();

  /** Throws AmqpChannelError / AmqpConnectionError for invalid arguments (before anything is created). */
  constructor(
    readonly name: string,
    readonly type: ExchangeType,
    readonly options: ExchangeOptions,
  ) {
    const args = options.arguments;
    if (type === 'x-consistent-hash') {
      const on = consistentHashOptions(args);
      this.hashTable = new ConsistentHashTable<Destination>(on);
      this.table = this.hashTable;
      this.routesOnHeaders = on.kind === 'header';
      this.delayed = false;
    } else if (type === 'x-delayed-message') {
      const routingType = delayedExchangeType(args, (t) => ROUTING_TYPES.has(t)) as RoutingType;
      this.table = createRoutingTable<Destination>(routingType);
      this.routesOnHeaders = routingType === 'headers';
      this.delayed = true;
    } else {
      this.table = createRoutingTable<Destination>(type);
      this.routesOnHeaders = type === 'headers';
      this.delayed = false;
    }
    const ae = args.get('alternate-exchange');
    this.alternateExchange = ae !== undefined && ae.type === 'S' ? ae.value.toString('utf8') : undefined;
  }

  get isDefault(): boolean {
    return this.name === '';
  }
  get durable(): boolean {
    return this.options.durable;
  }
}
