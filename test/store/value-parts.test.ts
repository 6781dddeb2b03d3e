import { describe, expect, it } from 'vitest';
import { DeferredMessage, decodeMessage, encodeMessage } from '../../src/store/keys.js';
import { wholeOps, type BatchOp } from '../../src/store/native-batch.js';
import { ValueParts } from '../../src/store/value-parts.js';
import { message } from './store-contract.js';

describe('a message value in parts', () => {
  it('is, joined, exactly the value encodeMessage gives, and holds the body itself', () => {
    const record = { ...message(7, 70_000), exchange: 'ex-é', routingKey: 'a.b.ü' };
    const deferred = new DeferredMessage(record);
    const parts = deferred.encodeParts();
    expect(parts.length).toBe(deferred.length);
    expect(parts.parts.reduce((n, p) => n + p.length, 0)).toBe(parts.length);
    expect(parts.parts.includes(record.body)).toBe(true);
    const joined = parts.join();
    expect(joined.equals(encodeMessage(record))).toBe(true);
    // the checksum covers the body: decoding checks it
    const decoded = decodeMessage(joined);
    expect(decoded.body.equals(record.body)).toBe(true);
    expect(decoded.routingKey).toBe('a.b.ü');
  });

  it('is joined for a write that needs whole values; other operations pass as they are', () => {
    const key = Buffer.from('k');
    const plain: BatchOp[] = [
      { type: 'put', key, value: Buffer.from('v') },
      { type: 'del', key },
    ];
    expect(wholeOps(plain)).toBe(plain);
    const mixed: BatchOp[] = [...plain, { type: 'put', key, value: new ValueParts([Buffer.from('ab'), Buffer.from('cd')], 4) }];
    const whole = wholeOps(mixed);
    expect(whole).not.toBe(mixed);
    expect(whole.slice(0, 2)).toEqual(plain);
    const last = whole[2]!;
    expect(last.type === 'put' && last.value.toString()).toBe('abcd');
    // the caller's operations are left as they were (the durable log retries them)
    expect(mixed[2]!.type === 'put' && !Buffer.isBuffer(mixed[2]!.value)).toBe(true);
  });
});
