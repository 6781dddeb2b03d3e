import { readdirSync, readFileSync } from 'node:fs';
import type { BrokerView } from './broker-view.js';

/** Process limits (Linux /proc; elsewhere what Node can tell). */
export function fileDescriptors(): { used: number; total: number } {
  let used = 0;
  let total = 1024;
  try {
    used = readdirSync('/proc/self/fd').length;
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m !== null) total = m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    // not Linux: leave the defaults
  }
  return { used, total };
}

export function objectCounts(view: BrokerView): { connections: number; channels: number; consumers: number; queues: number; exchanges: number } {
  let connections = 0;
  let channels = 0;
  for (const c of view.connectionList()) {
    if (!c.isOpen) continue;
    connections++;
    channels += c.channels.size;
  }
  let queues = 0;
  let exchanges = 0;
  let consumers = 0;
  for (const v of view.vhosts.values()) {
    queues += v.queues.size;
    exchanges += v.exchanges.size;
    for (const q of v.queues.values()) consumers += q.consumerCount;
  }
  return { connections, channels, consumers, queues, exchanges };
}
