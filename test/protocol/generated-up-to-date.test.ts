import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('generated protocol code', () => {
  it('matches what spec/codegen/generate.mjs produces from the JSON (no drift)', () => {
    let output = '';
    let status = 0;
    try {
      output = execFileSync(process.execPath, ['spec/codegen/generate.mjs', '--check'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      const e = err as { status: number; stdout: string; stderr: string };
      status = e.status;
      output = e.stdout + e.stderr;
    }
    expect(output).toContain('up to date');
    expect(status).toBe(0);
  });
});
