import type { Message } from '../message/message.js';

/** A message's place in one queue. seq orders the queue; requeue restores it. */
export interface QueueEntry {
  readonly seq: number;
  readonly message: Message;
  redelivered: boolean;
}
