import { AmqpChannelError } from '../../protocol/errors.js';
import { MethodId } from '../../protocol/generated/constants.js';
import { ReplyCode } from '../../protocol/reply-code.js';
import type { Channel } from '../channel.js';
import { Enqueued } from '../../queue/queue.js';
import { afterStoreCommit, publish } from '../../operations/publish.js';

export function handleTxSelect(ch: Channel): void {
  if (ch.confirmMode) {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'cannot switch from confirm to tx mode');
  }
  ch.txMode = true;
  ch.conn.send(ch.id, { id: MethodId.TxSelectOk, args: {} });
}

function checkTx(ch: Channel): void {
  if (!ch.txMode) throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'channel is not transactional');
}

/** Publishes, then acks/rejects, in the order they were made inside the transaction. */
export function handleTxCommit(ch: Channel): void {
  checkTx(ch);
  const publishes = ch.txPublishes;
  const settlements = ch.txSettlements;
  ch.txPublishes = [];
  ch.txSettlements = [];
  let stored = false;
  ch.touchesStore = false;
  for (const p of publishes) if (publish(ch.session, p.exchange, p.message, p.mandatory, ch) === Enqueued.Stored) stored = true;
  // a transaction is held at once: its whole batch went in at one go
  if (ch.touchesStore && ch.conn.broker.core.flow.saturated) ch.conn.enterFlow(Infinity);
  if (ch.creditQueue !== null) ch.waitForCredit();
  for (const s of settlements) ch.applySettlements([s.unacked], s.requeue);
  // RabbitMQ: commit-ok once the transaction's persistent messages are on disk
  ch.reply(afterStoreCommit(ch.session, stored), () => ({ id: MethodId.TxCommitOk, args: {} }));
}

/** Discards publishes; deliveries acked inside the transaction become unacked again. */
export function handleTxRollback(ch: Channel): void {
  checkTx(ch);
  ch.txPublishes = [];
  const settlements = ch.txSettlements;
  ch.txSettlements = [];
  ch.restoreUnacked(settlements.map((s) => s.unacked));
  ch.conn.send(ch.id, { id: MethodId.TxRollbackOk, args: {} });
}
