import { AmqpChannelError } from '../../protocol/errors.js';
import { MethodId } from '../../protocol/generated/constants.js';
import type { Method } from '../../protocol/generated/methods.js';
import { ReplyCode } from '../../protocol/reply-code.js';
import type { Channel } from '../channel.js';

type Args<I extends Method['id']> = Extract<Method, { id: I }>['args'];

export function handleConfirmSelect(ch: Channel, args: Args<typeof MethodId.ConfirmSelect>): void {
  if (ch.txMode) {
    throw new AmqpChannelError(ReplyCode.PreconditionFailed, 'cannot switch from tx to confirm mode');
  }
  ch.confirmMode = true;
  if (!args.nowait) ch.conn.send(ch.id, { id: MethodId.ConfirmSelectOk, args: {} });
}
