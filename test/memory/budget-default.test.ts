import { describe, expect, it } from 'vitest';
import { queueMemoryBudget } from '../../src/broker.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('the queue memory budget a broker starts with', () => {
  it('is half the memory high watermark by default, at most 96 MiB', () => {
    // 24 GiB machine, watermark 0.6: half of it would be 7.2 GiB; the ceiling applies
    expect(queueMemoryBudget({ memoryHighWatermark: 0.6, queueMemoryBudget: 0 }, 24 * GiB)).toBe(96 * MiB);
    // a small machine: half the watermark is below the ceiling
    expect(queueMemoryBudget({ memoryHighWatermark: 0.4, queueMemoryBudget: 0 }, 256 * MiB)).toBe(Math.floor(0.2 * 256 * MiB));
    // an absolute watermark in bytes
    expect(queueMemoryBudget({ memoryHighWatermark: 160 * MiB, queueMemoryBudget: 0 }, 24 * GiB)).toBe(80 * MiB);
  });

  it('takes a fraction of the watermark or a byte count when set, beyond the automatic ceiling too', () => {
    expect(queueMemoryBudget({ memoryHighWatermark: 0.5, queueMemoryBudget: 0.25 }, 16 * GiB)).toBe(2 * GiB);
    expect(queueMemoryBudget({ memoryHighWatermark: 0.5, queueMemoryBudget: 512 * MiB }, 16 * GiB)).toBe(512 * MiB);
  });
});
