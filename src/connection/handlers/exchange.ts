import { MethodId } from '../../protocol/generated/constants.js';
import type { Method } from '../../protocol/generated/methods.js';
import { bindExchange, declareExchange, deleteExchange, unbindExchange } from '../../operations/exchanges.js';
import type { Channel } from '../channel.js';

type Args<I extends Method['id']> = Extract<Method, { id: I }>['args'];

export function handleExchangeDeclare(ch: Channel, args: Args<typeof MethodId.ExchangeDeclare>): void {
  const done = declareExchange(ch.session, {
    name: args.exchange,
    type: args.type,
    passive: args.passive,
    durable: args.durable,
    autoDelete: args.autoDelete,
    internal: args.internal,
    arguments: args.arguments,
  });
  if (!args.noWait) ch.reply(done, () => ({ id: MethodId.ExchangeDeclareOk, args: {} }));
}

export function handleExchangeDelete(ch: Channel, args: Args<typeof MethodId.ExchangeDelete>): void {
  const done = deleteExchange(ch.session, args.exchange, args.ifUnused);
  if (!args.noWait) ch.reply(done, () => ({ id: MethodId.ExchangeDeleteOk, args: {} }));
}

export function handleExchangeBind(ch: Channel, args: Args<typeof MethodId.ExchangeBind>): void {
  const done = bindExchange(ch.session, args);
  if (!args.noWait) ch.reply(done, () => ({ id: MethodId.ExchangeBindOk, args: {} }));
}

export function handleExchangeUnbind(ch: Channel, args: Args<typeof MethodId.ExchangeUnbind>): void {
  const done = unbindExchange(ch.session, args);
  if (!args.noWait) ch.reply(done, () => ({ id: MethodId.ExchangeUnbindOk, args: {} }));
}
