import type { FieldTable } from '../protocol/field-types.js';
import type { Queue } from '../queue/queue.js';
import type { RoutingTable } from '../routing/routing-table.js';
import { createRoutingTable } from '../routing/routing-table.js';

export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';
export const EXCHANGE_TYPES: ReadonlySet<string> = new Set<ExchangeType>(['direct', 'fanout', 'topic', 'headers']);

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
 */
export class Exchange {
  readonly kind = 'exchange' as const;
  readonly table: RoutingTable<Destination>;
  /** the alternate-exchange argument: where messages this exchange cannot route go */
  readonly alternateExchange: string | undefined;
  /** bindings in which this exchange is the destination (exchange.bind … destination=this) */
  inboundBindings = 0;
  deleted = false;

  constructor(
    readonly name: string,
    readonly type: ExchangeType,
    readonly options: ExchangeOptions,
  ) {
    this.table = createRoutingTable<Destination>(type);
    const ae = options.arguments.get('alternate-exchange');
    this.alternateExchange = ae !== undefined && ae.type === 'S' ? ae.value.toString('utf8') : undefined;
  }

  get isDefault(): boolean {
    return this.name === '';
  }
  get durable(): boolean {
    return this.options.durable;
  }
}
