import { AmqpChannelError } from '../protocol/errors.js';
import type { FieldTable } from '../protocol/field-types.js';
import { ReplyCode } from '../protocol/reply-code.js';
import { Message } from '../message/message.js';
import { deadLetteredMessage, isDeadLetterCycle, publishedRoutingKeys, type DeathReason } from '../queue/dead-letter.js';
import { Enqueued, Queue, type QueueHost, type QueueOptions } from '../queue/queue.js';
import { DELAY_QUEUE_PREFIX, DelayedExchange, type DelayedRouter } from '../delayed/delayed-exchange.js';
import { parseQueueArguments } from '../queue/queue-arguments.js';
import { checkQueueProperties, comparedQueueArguments, takesQueueArgument, type QueueType } from '../queue/queue-type.js';
import type { Store } from '../store/store.js';
import type { QueueStorage } from '../queue/queue-storage.js';
import type { Logger } from 'pino';
import { type Destination, Exchange, type ExchangeOptions, type ExchangeType } from './exchange.js';
import { fieldTypeName } from '../protocol/field-table.js';
import { assertArgsEquivalent } from './equivalence.js';
import { RouteSet, type RouteSink } from '../routing/route-set.js';
import { VhostCounters } from '../stats/counters.js';
import { effectiveArguments, matchingPolicy, type CompiledPolicy } from './policy.js';

const PREDECLARED: ReadonlyArray<[string, ExchangeType]> = [
  ['amq.direct', 'direct'],
  ['amq.fanout', 'fanout'],
  ['amq.topic', 'topic'],
  ['amq.headers', 'headers'],
  ['amq.match', 'headers'],
];

const COMPARED_EXCHANGE_ARGS = ['alternate-exchange'];

/**
 * One virtual host: its exchanges, queues and bindings. Every operation validates
 * as RabbitMQ does and throws AmqpChannelError with RabbitMQ's reply code and text.
 */
export class Vhost implements QueueHost, DelayedRouter<Exchange> {
  readonly exchanges = new Map<string, Exchange>();
  readonly queues = new Map<string, Queue>();
  readonly defaultExchange: Exchange;
  /** pending messages of x-delayed-message exchanges */
  private readonly delayed = new Map<Exchange, DelayedExchange<Exchange>>();
  private readonly scratch = new RouteSet<Destination>();
  /** durable topology changes handed to the store (their -ok waits for the commit) */
  topologyWrites = 0;
  /** true while recovery rebuilds the topology from the store: nothing is written back */
  recovering = false;
  /** queue churn statistics (read by the stats tick) */
  readonly stats = new VhostCounters();
  /** policies and operator policies by name (see policy.ts); setPolicies applies them */
  private policies: ReadonlyMap<string, CompiledPolicy> = new Map();
  private operatorPolicies: ReadonlyMap<string, CompiledPolicy> = new Map();

  constructor(
    readonly name: string,
    private readonly store: Store,
    private readonly storage: QueueStorage,
    private readonly logger: Logger,
  ) {
    this.defaultExchange = new Exchange('', 'direct', { durable: true, autoDelete: false, internal: false, arguments: new Map() });
    this.exchanges.set('', this.defaultExchange);
    for (const [n, type] of PREDECLARED) {
      this.exchanges.set(n, new Exchange(n, type, { durable: true, autoDelete: false, internal: false, arguments: new Map() }));
    }
  }

  /** The store, for a durable topology change (counted so the -ok can wait for the commit). */
  private topologyStore(): Store {
    this.topologyWrites++;
    return this.store;
  }

  describeExchange(name: string): string {
    return `exchange '${name}' in vhost '${this.name}'`;
  }
  describeQueue(name: string): string {
    return `queue '${name}' in vhost '${this.name}'`;
  }

  // ---- exchanges --------------------------------------------------------------------------

  getExchange(name: string): Exchange {
    const ex = this.exchanges.get(name);
    if (ex === undefined) throw new AmqpChannelError(ReplyCode.NotFound, `no ${this.describeExchange(name)}`);
    return ex;
  }

  declareExchange(name: string, type: ExchangeType, options: ExchangeOptions): Exchange {
    const ae = options.arguments.get('alternate-exchange');
    if (ae !== undefined && ae.type !== 'S') {
      throw new AmqpChannelError(
        ReplyCode.PreconditionFailed,
        `invalid type '${fieldTypeName(ae.type)}' for arg 'alternate-exchange' in ${this.describeExchange(name)}`,
      );
    }
    const existing = this.exchanges.get(name);
    if (existing !== undefined) {
      const desc = this.describeExchange(name);
      if (existing.type !== type) inequivalent('type', desc, type, existing.type);
      if (existing.durable !== options.durable) inequivalent('durable', desc, options.durable, existing.durable);
      if (existing.options.autoDelete !== options.autoDelete) inequivalent('auto_delete', desc, options.autoDelete, existing.options.autoDelete);
      if (existing.options.internal !== options.internal) inequivalent('internal', desc, options.internal, existing.options.internal);
      assertArgsEquivalent(existing.options.arguments, options.arguments, desc, COMPARED_EXCHANGE_ARGS);
      return existing;
    }
    const ex = new Exchange(name, type, options);
    this.exchanges.set(name, ex);
    if (this.policies.size !== 0) this.applyExchangePolicy(ex);
    if (options.durable && !this.recovering) {
      this.topologyStore().putExchange({ vhost: this.name, name, type, autoDelete: options.autoDelete, internal: options.internal, arguments: options.arguments });
    }
    if (ex.delayed) {
      let queueId = 0;
      if (options.durable && !this.recovering) {
        // durable delays live in a store queue of their own (recovery re-attaches it)
        queueId = this.store.allocateQueueId();
        this.topologyStore().putQueue({ vhost: this.name, name: DELAY_QUEUE_PREFIX + name, id: queueId, autoDelete: false, arguments: new Map() });
      }
      this.delayed.set(ex, new DelayedExchange(ex, this, options.durable ? this.storage : null, queueId));
    }
    return ex;
  }

  deleteExchange(ex: Exchange, ifUnused: boolean): void {
    if (ifUnused && ex.table.hasBindings()) {
      throw new AmqpChannelError(ReplyCode.PreconditionFailed, `${this.describeExchange(ex.name)} in use`);
    }
    this.removeExchange(ex);
  }

  private removeExchange(ex: Exchange): void {
    if (ex.deleted) return;
    ex.deleted = true;
    this.exchanges.delete(ex.name);
    // bindings where it is the source
    for (const b of [...ex.table.bindings()]) {
      this.forgetBinding(ex, b.dest, b.routingKey, b.args);
    }
    // bindings where it is the destination
    if (ex.inboundBindings > 0) {
      for (const src of this.exchanges.values()) this.removeBindingsTo(src, ex);
    }
    if (ex.durable) this.topologyStore().deleteExchange(this.name, ex.name);
    const delayed = this.delayed.get(ex);
    if (delayed !== undefined) {
      delayed.destroy(this.name);
      this.delayed.delete(ex);
    }
  }

  /**
   * The vhost is deleted: every queue (with its messages) and exchange goes, durable ones
   * from the store too. Consumers are cancelled as for any queue deletion.
   */
  destroy(): void {
    for (const q of [...this.queues.values()]) this.deleteQueue(q);
    for (const ex of [...this.exchanges.values()]) {
      if (!ex.isDefault) this.removeExchange(ex);
    }
  }

  /** Recovery: re-attach a durable delayed exchange's stored messages. */
  restoreDelayed(exchangeName: string, queueId: number): Promise<number> {
    const ex = this.exchanges.get(exchangeName);
    const delayed = ex === undefined ? undefined : this.delayed.get(ex);
    if (delayed === undefined) {
      // the exchange is gone: drop its leftovers
      this.topologyStore().deleteQueue(this.name, DELAY_QUEUE_PREFIX + exchangeName, queueId);
      return Promise.resolve(0);
    }
    delayed.queueId = queueId;
    return delayed.restore();
  }

  /** x-delayed-message: hold a message with a positive x-delay. Stored → confirm after the commit. */
  holdDelayed(exchange: Exchange, message: Message, delayMs: number): Enqueued {
    return this.delayed.get(exchange)!.hold(message, delayMs) ? Enqueued.Stored : Enqueued.Accepted;
  }

  /** DelayedRouter: a held message is due; route it as a publish (no confirm, no return). */
  routeDelayed(exchange: Exchange, message: Message): void {
    if (exchange.deleted) return;
    this.routeAndEnqueue(exchange, message);
  }

  /** Routes a message the broker itself publishes (dead-letters, due delayed messages). */
  private routeAndEnqueue(exchange: Exchange, message: Message): void {
    const targets = new Set<Queue>();
    this.route(exchange, message, targets);
    this.enqueueAll(message, targets);
  }

  private enqueueAll(message: Message, targets: Set<Queue>): void {
    if (message.persistent) {
      let durable = 0;
      for (const t of targets) if (t.storesPersistent) durable++;
      message.durableRefs = durable;
    }
    for (const t of targets) t.enqueue(message);
  }

  // ---- queues -----------------------------------------------------------------------------

  findQueue(name: string): Queue | undefined {
    return this.queues.get(name);
  }

  getQueue(name: string): Queue {
    const q = this.queues.get(name);
    if (q === undefined) throw new AmqpChannelError(ReplyCode.NotFound, `no ${this.describeQueue(name)}`);
    return q;
  }

  // ---- policies -----------------------------------------------------------------------------

  /** The policy and operator policy that apply to a queue or exchange now. */
  policyOf(kind: 'queue' | 'exchange', name: string): { policy: CompiledPolicy | undefined; operator: CompiledPolicy | undefined } {
    return {
      policy: matchingPolicy(this.policies.values(), kind, name),
      operator: kind === 'queue' ? matchingPolicy(this.operatorPolicies.values(), kind, name) : undefined,
    };
  }

  private queueArguments(name: string, args: FieldTable, type: QueueType): FieldTable {
    const { policy, operator } = this.policyOf('queue', name);
    const effective = effectiveArguments('queue', args, policy, operator);
    // RabbitMQ: a policy key the queue type does not support (queue-mode on a quorum queue) is ignored
    if (effective !== args) for (const k of [...effective.keys()]) if (!args.has(k) && !takesQueueArgument(type, k)) effective.delete(k);
    return effective;
  }

  /** Replaces the vhost's policies and applies them at once to every queue and exchange. */
  setPolicies(policies: ReadonlyMap<string, CompiledPolicy>, operatorPolicies: ReadonlyMap<string, CompiledPolicy>): void {
    this.policies = policies;
    this.operatorPolicies = operatorPolicies;
    for (const q of this.queues.values()) {
      try {
        q.applyLimits(parseQueueArguments(this.queueArguments(q.name, q.options.arguments, q.limits.queueType), this.describeQueue(q.name)));
      } catch (err) {
        // a policy value the queue's own arguments make invalid: the queue keeps what it had
        this.logger.warn({ err, queue: q.name, vhost: this.name }, 'policy not applied to queue');
      }
    }
    for (const x of this.exchanges.values()) this.applyExchangePolicy(x);
  }

  private applyExchangePolicy(x: Exchange): void {
    if (x.isDefault) return;
    const { policy } = this.policyOf('exchange', x.name);
    const ae = effectiveArguments('exchange', x.options.arguments, policy, undefined).get('alternate-exchange');
    x.alternateExchange = ae !== undefined && ae.type === 'S' ? ae.value.toString('utf8') : undefined;
  }

  /** Creates the queue, or checks an existing one is equivalent (406 otherwise). */
  declareQueue(name: string, options: QueueOptions, recoveredId = 0): Queue {
    const desc = this.describeQueue(name);
    this.stats.queueDeclared++;
    const existing = this.queues.get(name);
    if (existing !== undefined) {
      // RabbitMQ 3.10 checks a redeclare for equivalence only (over the arguments its queue type takes), never validates it
      if (existing.durable !== options.durable) inequivalent('durable', desc, options.durable, existing.durable);
      if (existing.options.autoDelete !== options.autoDelete) inequivalent('auto_delete', desc, options.autoDelete, existing.options.autoDelete);
      assertArgsEquivalent(existing.options.arguments, options.arguments, desc, comparedQueueArguments(existing.limits.queueType));
      existing.touch();
      return existing;
    }
    const limits = parseQueueArguments(options.arguments, desc);
    checkQueueProperties(limits.queueType, desc, {
      durable: options.durable && options.exclusiveOwner === null,
      exclusive: options.exclusiveOwner !== null,
      autoDelete: options.autoDelete,
    });
    // durable, shared queues live in the store; exclusive ones never survive their connection.
    // Every queue may page a long backlog out of memory (when the broker has a data dir).
    const durable = options.durable && options.exclusiveOwner === null;
    const id = durable ? recoveredId || this.store.allocateQueueId() : 0;
    const effective = this.policies.size === 0 && this.operatorPolicies.size === 0 ? limits : parseQueueArguments(this.queueArguments(name, options.arguments, limits.queueType), desc);
    const q = new Queue(name, options, this, effective, id, this.storage);
    this.queues.set(name, q);
    this.stats.queueCreated++;
    if (durable && recoveredId === 0) {
      this.topologyStore().putQueue({ vhost: this.name, name, id, autoDelete: options.autoDelete, arguments: options.arguments });
    }
    return q;
  }

  /**
   * queue.purge: drops every ready message; returns how many. A durable queue starts over
   * under a new store id, written with its record, so that the old id's entries go in the
   * background (and, after a crash, recovery finishes that) while deliveries awaiting their
   * ack move along.
   */
  purgeQueue(q: Queue): number {
    const n = q.purge();
    if (q.id !== 0 && q.storesPersistent) {
      const oldId = q.id;
      q.renumber(this.store.allocateQueueId());
      this.topologyStore().purgeQueue({ vhost: this.name, name: q.name, id: q.id, autoDelete: q.options.autoDelete, arguments: q.options.arguments }, oldId);
    }
    return n;
  }

  /** Deletes the queue with its bindings; returns the number of ready messages dropped. */
  deleteQueue(q: Queue): number {
    if (q.deleted) return 0;
    this.queues.delete(q.name);
    this.stats.queueDeleted++;
    for (const ex of [...this.exchanges.values()]) this.removeBindingsTo(ex, q);
    const n = q.markDeleted();
    // the store releases the queue's entries (paged-out ones included) and the bodies only they held
    if (q.id !== 0) this.topologyStore().deleteQueue(this.name, q.name, q.id);
    return n;
  }

  /**
   * QueueHost: a message leaves `queue` for its dead-letter exchange (rabbit_dead_letter).
   * Routed with x-dead-letter-routing-key, or else with the keys it was published with;
   * a missing dead-letter exchange drops it; fully automatic cycles are broken.
   */
  deadLetter(queue: Queue, message: Message, reason: DeathReason): void {
    try {
      this.deadLetterNow(queue, message, reason);
    } catch (err) {
      // never seen with a message checked at publish; the message cannot reach its dead-letter
      // exchange and leaves its queue anyway (rejected, expired or pushed out)
      this.logger.error(
        { err, vhost: this.name, queue: queue.name, reason, messageId: message.storeId || undefined },
        'dead-lettering failed: message dropped',
      );
    }
  }

  private deadLetterNow(queue: Queue, message: Message, reason: DeathReason): void {
    const dlxName = queue.limits.deadLetterExchange!;
    const dlx = this.exchanges.get(dlxName);
    if (dlx === undefined) return;
    const keys = queue.limits.deadLetterRoutingKey !== undefined ? [queue.limits.deadLetterRoutingKey] : publishedRoutingKeys(message);
    const dead = deadLetteredMessage(message, queue.name, reason, dlxName, keys[0]!, Date.now(), queue.limits.deadLetterRoutingKey !== undefined);
    const targets = new Set<Queue>();
    this.route(dlx, dead, targets);
    for (let i = 1; i < keys.length; i++) {
      this.route(dlx, new Message(dlxName, keys[i]!, dead.rawProperties, dead.body), targets);
    }
    if (reason !== 'rejected') {
      for (const t of targets) if (isDeadLetterCycle(dead, t.name)) targets.delete(t);
    }
    this.enqueueAll(dead, targets);
  }

  /** QueueHost: a timer or deferred callback of the queue threw. */
  queueCallbackFailed(queue: Queue, err: unknown, during: string): void {
    this.logger.error({ err, vhost: this.name, queue: queue.name, during }, 'internal error in a queue callback (contained)');
  }

  /** DelayedRouter: routing a due delayed message threw (it stays in the store if it was stored). */
  delayedRouteFailed(exchange: Exchange, err: unknown): void {
    this.logger.error({ err, vhost: this.name, exchange: exchange.name }, 'internal error routing a delayed message (contained)');
  }

  /** QueueHost: a store read for this queue failed. */
  queueStoreError(queue: Queue, err: unknown): void {
    this.logger.error({ err, queue: queue.name, vhost: this.name }, 'store read failed');
  }

  /** QueueHost: an auto-delete queue lost its last consumer. */
  queueUnused(queue: Queue): void {
    this.deleteQueue(queue);
  }

  // ---- bindings ---------------------------------------------------------------------------

  bind(source: Exchange, dest: Destination, routingKey: string, args: FieldTable): void {
    if (source.isDefault || (dest.kind === 'exchange' && dest.isDefault)) {
      throw new AmqpChannelError(ReplyCode.AccessRefused, 'operation not permitted on the default exchange');
    }
    if (!source.table.bind(dest, routingKey, args)) return; // RabbitMQ: binding twice is a no-op
    if (dest.kind === 'exchange') dest.inboundBindings++;
    if (source.durable && dest.durable && !this.recovering) {
      this.topologyStore().putBinding(this.bindingRecord(source, dest, routingKey, args));
    }
  }

  unbind(source: Exchange, dest: Destination, routingKey: string, args: FieldTable): void {
    if (source.isDefault || (dest.kind === 'exchange' && dest.isDefault)) {
      throw new AmqpChannelError(ReplyCode.AccessRefused, 'operation not permitted on the default exchange');
    }
    if (!source.table.hasBinding(dest, routingKey, args)) return; // RabbitMQ 3.x: unbinding a missing binding is ok
    this.forgetBinding(source, dest, routingKey, args);
  }

  private forgetBinding(source: Exchange, dest: Destination, routingKey: string, args: FieldTable): void {
    source.table.unbind(dest, routingKey, args);
    if (dest.kind === 'exchange') dest.inboundBindings--;
    if (source.durable && dest.durable) this.topologyStore().deleteBinding(this.bindingRecord(source, dest, routingKey, args));
    this.maybeAutoDelete(source);
  }

  private removeBindingsTo(source: Exchange, dest: Destination): void {
    if (source.isDefault) return;
    let matched = false;
    for (const b of source.table.bindings()) {
      if (b.dest === dest) {
        matched = true;
        break;
      }
    }
    if (!matched) return;
    for (const b of [...source.table.bindings()]) {
      if (b.dest === dest) this.forgetBinding(source, dest, b.routingKey, b.args);
    }
  }

  /** RabbitMQ: an auto-delete exchange goes when its last binding (as source) is removed. */
  private maybeAutoDelete(ex: Exchange): void {
    if (ex.options.autoDelete && !ex.deleted && !ex.table.hasBindings()) this.removeExchange(ex);
  }

  private bindingRecord(source: Exchange, dest: Destination, routingKey: string, args: FieldTable) {
    return { vhost: this.name, source: source.name, destination: dest.name, destinationKind: dest.kind, routingKey, arguments: args };
  }

  // ---- routing ----------------------------------------------------------------------------

  /**
   * Adds every queue the message reaches to `out`, following exchange-to-exchange
   * bindings once each (cycles are safe: each exchange is visited at most once, and
   * `out` is a set, so a queue receives the message at most once).
   */
  route(exchange: Exchange, message: Message, out: RouteSink<Queue>): void {
    const before = out.size;
    this.routeExchange(exchange, message, out);
    if (out.size !== before || exchange.alternateExchange === undefined) return;
    // alternate exchanges: a message the exchange cannot route goes to its AE (and the AE's AE…)
    const seen = new Set<Exchange>([exchange]);
    for (let name: string | undefined = exchange.alternateExchange; name !== undefined && out.size === before; ) {
      const ae = this.exchanges.get(name);
      if (ae === undefined || seen.has(ae)) return;
      seen.add(ae);
      this.routeExchange(ae, message, out);
      name = ae.alternateExchange;
    }
  }

  private routeExchange(exchange: Exchange, message: Message, out: RouteSink<Queue>): void {
    if (exchange.isDefault) {
      const q = this.queues.get(message.routingKey);
      if (q !== undefined) out.add(q);
      return;
    }
    const scratch = this.scratch;
    routeOne(exchange, message, scratch);
    let nested: Exchange[] | null = null;
    for (let i = 0; i < scratch.size; i++) {
      const d = scratch.get(i);
      if (d.kind === 'queue') out.add(d);
      else (nested ??= []).push(d);
    }
    scratch.clear();
    if (nested !== null) this.routeNested(exchange, nested, message, out);
  }

  private routeNested(origin: Exchange, pending: Exchange[], message: Message, out: RouteSink<Queue>): void {
    const visited = new Set<Exchange>([origin]);
    const found = new Set<Destination>();
    while (pending.length !== 0) {
      const ex = pending.pop()!;
      if (visited.has(ex)) continue;
      visited.add(ex);
      found.clear();
      routeOne(ex, message, found);
      for (const d of found) {
        if (d.kind === 'queue') out.add(d);
        else if (!visited.has(d)) pending.push(d);
      }
    }
  }
}

/** One exchange's own table (no exchange-to-exchange hops, no alternate exchange). */
function routeOne(exchange: Exchange, message: Message, out: RouteSink<Destination>): void {
  if (exchange.hashTable !== null && exchange.hashTable.needsProperties) {
    exchange.hashTable.routeMessage(message.routingKey, message.properties(), out);
  } else {
    exchange.table.route(message.routingKey, exchange.routesOnHeaders ? message.headers() : undefined, out);
  }
}

function inequivalent(arg: string, desc: string, received: unknown, current: unknown): never {
  throw new AmqpChannelError(
    ReplyCode.PreconditionFailed,
    `inequivalent arg '${arg}' for ${desc}: received '${String(received)}' but current is '${String(current)}'`,
  );
}

