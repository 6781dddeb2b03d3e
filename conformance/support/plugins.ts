import { closeEvent } from './closes.js';
import { connect, uniqueName } from './connections.js';

/**
 * For a describe block whose exchange type is a plugin on RabbitMQ: fails at once, naming the
 * plugin to enable, when the broker does not know `type` (RabbitMQ closes the connection with
 * 503 COMMAND_INVALID), instead of letting each case fail on its own. Warren has them built in.
 *
 *   beforeAll(() => requireExchangeType('x-consistent-hash', 'rabbitmq_consistent_hash_exchange'));
 */
export async function requireExchangeType(type: string, plugin: string): Promise<void> {
  const conn = await connect();
  let connectionError: { code?: number } | null = null;
  conn.on('error', (err: { code?: number }) => (connectionError = err));
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    const name = uniqueName('probe');
    // an unknown type closes the connection: the pending declare is rejected, the error comes with the close
    const declared = await ch.assertExchange(name, type, { durable: false, autoDelete: false }).then(
      () => true,
      () => false,
    );
    if (!declared) {
      if (connectionError === null) await closeEvent(conn);
      const code = (connectionError as { code?: number } | null)?.code;
      if (code === 503) {
        throw new Error(`the broker does not know exchange type '${type}': enable its plugin with \`rabbitmq-plugins enable ${plugin}\``);
      }
      throw new Error(`declaring an exchange of type '${type}' failed (${code ?? 'no connection error'})`);
    }
    await ch.deleteExchange(name);
  } finally {
    await conn.close().catch(() => {});
  }
}
