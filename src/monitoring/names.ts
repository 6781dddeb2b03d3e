import type { Socket } from 'node:net';
import type { Channel } from '../connection/channel.js';
import type { Connection } from '../connection/connection.js';

/** RabbitMQ's connection name: "peer_host:peer_port -> host:port". */
export function connectionName(c: Connection): string {
  const sock = c.socket as Partial<Socket>;
  return `${c.remoteAddress ?? 'local'}:${c.remotePort ?? 0} -> ${sock.localAddress ?? 'local'}:${sock.localPort ?? 0}`;
}

export function channelName(ch: Channel): string {
  return `${connectionName(ch.conn)} (${ch.id})`;
}
