import { describe, expect, it } from 'vitest';
import { indexKey, indexKeyString, messageKey, messageKeyString } from '../../src/store/keys.js';

describe('string forms of the hot keys', () => {
  it('are the latin1 forms of the binary keys, across byte boundaries', () => {
    for (const id of [0, 1, 255, 256, 65535, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
      expect(messageKeyString(id)).toBe(messageKey(id).toString('latin1'));
      for (const q of [1, 255, 256, 2 ** 31 + 7]) {
        for (const p of [0, 5, 255]) expect(indexKeyString(q, p, id)).toBe(indexKey(q, p, id).toString('latin1'));
      }
    }
  });
});
