import { Message } from '../message/message.js';
import type { QueueStorage } from '../queue/queue-storage.js';
import type { StoredEntry } from '../store/store.js';
import { DelayScheduler } from './delay-scheduler.js';
import { DelaySeqAllocator, dueAtOfSeq } from './delay-seq.js';

/** Name of the store queue that holds a durable delayed exchange's pending messages. */
export const DELAY_QUEUE_PREFIX = 'amq.warren.delayed.';

interface DelayedItem {
  readonly seq: number;
  readonly message: Message;
  /** stored message id (0 when held in memory only) */
  readonly storeId: number;
}

/** Routes a message that is due, as if it had just been published to the exchange. */
export interface DelayedRouter<X> {
  routeDelayed(exchange: X, message: Message): void;
  /** routing a due message threw: logged; a stored message stays in the store (routed after a restart) */
  delayedRouteFailed(exchange: X, err: unknown): void;
}

/** What a delayed exchange needs to know of its exchange (the vhost's Exchange; delayed/ sits below vhost/). */
export interface DelayedExchangeRef {
  readonly name: string;
}

const PAGE = 1000;

/**
 * Pending messages of one x-delayed-message exchange (Warren's built-in version of the
 * community plugin). A persistent message on a durable exchange is written to a store
 * queue whose seqs encode the due time, so the index order is due order and delays
 * survive restarts; when due it is routed as a fresh publish and its delay entry is
 * deleted in the same group commit.
 */
export class DelayedExchange<X extends DelayedExchangeRef> {
  private readonly scheduler: DelayScheduler<DelayedItem>;
  private readonly allocator = new DelaySeqAllocator();

  constructor(
    readonly exchange: X,
    private readonly router: DelayedRouter<X>,
    private readonly storage: QueueStorage | null,
    /** store queue id for durable exchanges (0 = memory only) */
    public queueId: number,
  ) {
    this.scheduler = new DelayScheduler<DelayedItem>({
      onDue: (item) => this.due(item),
      onError: (err) => this.router.delayedRouteFailed(this.exchange, err),
    });
  }

  /** Holds a message for delayMs. Returns true when it was written to the store (confirm after commit). */
  hold(message: Message, delayMs: number): boolean {
    const dueAt = Date.now() + delayMs;
    const seq = this.allocator.allocate(dueAt);
    let storeId = 0;
    if (this.queueId !== 0 && this.storage !== null && message.persistent) {
      storeId = this.storage.store.putMessage(message);
      this.storage.store.putEntry({
        queueId: this.queueId,
        priority: 0,
        seq,
        messageId: storeId,
        refs: 1,
        redelivered: false,
        transient: false,
        expiresAt: 0,
      });
    }
    this.scheduler.schedule(dueAt, { seq, message, storeId });
    return storeId !== 0;
  }

  private due(item: DelayedItem): void {
    this.allocator.release(item.seq);
    // a fresh Message: the stored delay copy is deleted below, routing stores its own
    const m = item.message;
    this.router.routeDelayed(this.exchange, new Message(m.exchange, m.routingKey, m.rawProperties, m.body));
    if (item.storeId !== 0 && this.storage !== null) {
      this.storage.store.deleteEntry(this.queueId, 0, item.seq, item.storeId, 1);
    }
  }

  /** Recovery: reschedule every stored delayed message (overdue ones go out at once, in order). */
  async restore(): Promise<number> {
    if (this.storage === null || this.queueId === 0) return 0;
    let after: { priority: number; seq: number } | null = null;
    let n = 0;
    for (;;) {
      const entries: StoredEntry[] = await this.storage.store.readEntries(this.queueId, after, PAGE);
      if (entries.length === 0) return n;
      for (const e of entries) {
        this.allocator.restore(e.seq);
        const m = e.message;
        this.scheduler.schedule(dueAtOfSeq(e.seq), {
          seq: e.seq,
          message: new Message(m.exchange, m.routingKey, m.rawProperties, m.body),
          storeId: e.messageId,
        });
        after = e;
        n++;
      }
    }
  }

  /** The exchange is deleted: pending messages are dropped with it (the store frees their bodies with its queue). */
  destroy(vhost: string): void {
    this.scheduler.clear();
    this.scheduler.stop();
    if (this.queueId !== 0) this.storage?.store.deleteQueue(vhost, DELAY_QUEUE_PREFIX + this.exchange.name, this.queueId);
  }
}
