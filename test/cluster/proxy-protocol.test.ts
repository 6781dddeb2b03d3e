import { describe, expect, it } from 'vitest';
import { encodeProxyV1, parseProxyV1 } from '../../src/cluster/proxy-protocol.js';

describe('PROXY protocol v1', () => {
  it('round-trips IPv4 (also written as ::ffff:a.b.c.d) and IPv6 addresses', () => {
    const v4 = encodeProxyV1('::ffff:10.1.2.3', 40000, '10.0.0.1', 5672);
    expect(v4.toString()).toBe('PROXY TCP4 10.1.2.3 10.0.0.1 40000 5672\r\n');
    expect(parseProxyV1(Buffer.concat([v4, Buffer.from('AMQP')]))).toEqual({ peer: { address: '10.1.2.3', port: 40000 }, length: v4.length });
    const v6 = encodeProxyV1('::1', 1, '::1', 2);
    expect(parseProxyV1(v6)?.peer).toEqual({ address: '::1', port: 1 });
  });

  it('says UNKNOWN when the address is not known, and the leader then sees no address', () => {
    const h = encodeProxyV1(undefined, undefined, '127.0.0.1', 5672);
    expect(h.toString()).toBe('PROXY UNKNOWN\r\n');
    expect(parseProxyV1(h)?.peer).toEqual({ address: undefined, port: undefined });
  });

  it('waits for the end of the line, and refuses anything else', () => {
    expect(parseProxyV1(Buffer.from('PROXY TCP4 1.2.3.4'))).toBeNull();
    for (const bad of ['AMQP\x00\x00\x09\x01\r\n', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', 'PROXY TCP4 ::1 ::1 1 2\r\n', 'PROXY TCP4 1.2.3.4 5.6.7.8 70000 1\r\n', `PROXY ${'x'.repeat(200)}`]) {
      expect(() => parseProxyV1(Buffer.from(bad))).toThrow();
    }
  });
});
