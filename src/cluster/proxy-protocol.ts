import { isIP } from 'node:net';

/**
 * PROXY protocol v1 (HAProxy's text header): a follower that forwards a client's AMQP
 * connection to the leader states the client's address first, so the leader applies
 * loopback-only users and logs to the real peer. Only accepted on the authenticated
 * cluster port, never from clients.
 *
 *   "PROXY TCP4 <src> <dst> <srcport> <dstport>\r\n"  (TCP6 likewise; "PROXY UNKNOWN\r\n")
 */
export const PROXY_V1_MAX = 107;

export interface ProxiedAddress {
  readonly address: string | undefined;
  readonly port: number | undefined;
}

export function encodeProxyV1(src: string | undefined, srcPort: number | undefined, dst: string | undefined, dstPort: number | undefined): Buffer {
  const strip = (a: string | undefined): string => (a !== undefined && a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : (a ?? ''));
  const s = strip(src);
  const d = strip(dst);
  const family = isIP(s);
  if (family === 0 || isIP(d) !== family || srcPort === undefined || dstPort === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  return Buffer.from(`PROXY TCP${family} ${s} ${d} ${srcPort} ${dstPort}\r\n`, 'latin1');
}

/**
 * Parses the header at the start of `buf`. Returns null while more bytes are needed;
 * throws on anything that is not a valid v1 header.
 */
export function parseProxyV1(buf: Buffer): { peer: ProxiedAddress; length: number } | null {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.length >= PROXY_V1_MAX) throw new Error('PROXY header too long');
    return null;
  }
  if (end + 2 > PROXY_V1_MAX) throw new Error('PROXY header too long');
  const parts = buf.toString('latin1', 0, end).split(' ');
  if (parts[0] !== 'PROXY') throw new Error('not a PROXY header');
  if (parts[1] === 'UNKNOWN') return { peer: { address: undefined, port: undefined }, length: end + 2 };
  if ((parts[1] !== 'TCP4' && parts[1] !== 'TCP6') || parts.length !== 6) throw new Error('malformed PROXY header');
  const family = parts[1] === 'TCP4' ? 4 : 6;
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  if (isIP(src) !== family || isIP(dst) !== family) throw new Error('bad address in PROXY header');
  const port = (p: string): number => {
    if (!/^[0-9]{1,5}$/.test(p) || Number(p) > 65535) throw new Error('bad port in PROXY header');
    return Number(p);
  };
  port(dport);
  return { peer: { address: src, port: port(sport) }, length: end + 2 };
}
