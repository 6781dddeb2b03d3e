// The benchmark's instrument checks itself (bench/self-check.mjs, no broker needed): the
// latency histogram, the verifier (every kind of bad delivery, and the accounting of
// messages left in a queue when a run stops before its consumers catch up), option
// resolution, the raw client's publish framing, and that every suite entry names a real
// scenario and metric. Run here so a change to bench/ that breaks the instrument fails CI
// rather than the next suite run. No timing is asserted.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('bench/self-check.mjs', () => {
  it('passes every check', async () => {
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, ['bench/self-check.mjs'], { cwd: root, timeout: 60_000 }, (err, out) => {
        resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout: out });
      });
    });
    expect(stdout).not.toMatch(/^FAIL/m);
    expect(stdout).toMatch(/(\d+)\/\1 checks passed/);
    expect(code).toBe(0);
  }, 90_000);
});
