import type { Channel } from 'amqplib';

// Methods amqplib's promise API does not expose, sent through its internal rpc/sendMessage.
// Ids are (classId << 16) | methodId; spec: tx.select 90/10, tx.commit 90/20,
// tx.rollback 90/30, confirm.select 85/10, basic.qos 60/10, basic.recover 60/110.
const TX_SELECT = (90 << 16) | 10;
const TX_SELECT_OK = (90 << 16) | 11;
const TX_COMMIT = (90 << 16) | 20;
const TX_COMMIT_OK = (90 << 16) | 21;
const TX_ROLLBACK = (90 << 16) | 30;
const TX_ROLLBACK_OK = (90 << 16) | 31;
const BASIC_QOS = (60 << 16) | 10;
const BASIC_QOS_OK = (60 << 16) | 11;
const BASIC_RECOVER = (60 << 16) | 110;
const BASIC_RECOVER_OK = (60 << 16) | 111;
const CONFIRM_SELECT = (85 << 16) | 10;
const CONFIRM_SELECT_OK = (85 << 16) | 11;

interface RawChannel {
  rpc(method: number, fields: object, expect: number): Promise<object>;
  sendMessage(fields: object, properties: object, content: Buffer): boolean;
}

const raw = (ch: Channel): RawChannel => ch as unknown as RawChannel;

export const txSelect = (ch: Channel): Promise<object> => raw(ch).rpc(TX_SELECT, {}, TX_SELECT_OK);
export const txCommit = (ch: Channel): Promise<object> => raw(ch).rpc(TX_COMMIT, {}, TX_COMMIT_OK);
export const txRollback = (ch: Channel): Promise<object> => raw(ch).rpc(TX_ROLLBACK, {}, TX_ROLLBACK_OK);
export const confirmSelect = (ch: Channel): Promise<object> => raw(ch).rpc(CONFIRM_SELECT, { nowait: false }, CONFIRM_SELECT_OK);

/** basic.recover with an explicit requeue flag (amqplib's recover() always sends requeue=true). */
export const basicRecover = (ch: Channel, requeue: boolean): Promise<object> => raw(ch).rpc(BASIC_RECOVER, { requeue }, BASIC_RECOVER_OK);

/** basic.qos with a prefetch_size (amqplib's qos() always sends 0). */
export const basicQos = (ch: Channel, prefetchSize: number, prefetchCount: number, global: boolean): Promise<object> =>
  raw(ch).rpc(BASIC_QOS, { prefetchSize, prefetchCount, global }, BASIC_QOS_OK);

/**
 * basic.publish with the method fields and properties exactly as given, for what amqplib's
 * publish() cannot express: it always clears `immediate` and never sends `clusterId`.
 */
export function publishRaw(
  ch: Channel,
  fields: { exchange: string; routingKey: string; mandatory?: boolean; immediate?: boolean },
  properties: Record<string, unknown>,
  content: Buffer,
): void {
  raw(ch).sendMessage({ mandatory: false, immediate: false, ticket: 0, ...fields }, { headers: {}, ...properties }, content);
}
