import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BROKER_NODE_FLAGS } from '../../src/cli/node-flags.js';

const root = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');

describe("the broker's V8 flags", () => {
  it('are passed by npm start and by the #! line of the warren executable', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start!;
    const shebang = read('src/cli/main.ts').split('\n')[0]!;
    expect(BROKER_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const flag of BROKER_NODE_FLAGS) {
      expect(start.split(' ')).toContain(flag);
      expect(shebang.split(' ')).toContain(flag);
    }
  });

  it('are accepted by node: the #! line runs the built executable', () => {
    // what the kernel runs for `warren …`: the #! line's program and arguments, then the file
    const [program, ...args] = read('dist/cli/main.js').split('\n')[0]!.slice(2).trim().split(' ');
    const out = execFileSync(program!, [...args, new URL('dist/cli/main.js', root).pathname, '--version'], { encoding: 'utf8' });
    expect(out.trim()).toBe((JSON.parse(read('package.json')) as { version: string }).version);
  });
});
