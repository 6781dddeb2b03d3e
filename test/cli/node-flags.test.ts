import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BROKER_NODE_FLAGS } from '../../src/cli/node-flags.js';

const root = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');

describe("the broker's V8 flags", () => {
  it('are passed by npm start, the #! line of the warren executable, the Docker image and the documented start commands', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start!;
    const shebang = read('src/cli/main.ts').split('\n')[0]!;
    const dockerCmd = read('Dockerfile').split('\n').find((l) => l.startsWith('CMD '))!;
    expect(BROKER_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const flag of BROKER_NODE_FLAGS) {
      expect(start.split(' ')).toContain(flag);
      expect(shebang.split(' ')).toContain(flag);
      expect(JSON.parse(dockerCmd.slice(4)) as string[]).toContain(flag);
    }
    // every `node … dist/cli/main.js start` a user is told to run carries them
    for (const doc of ['README.md', 'docs/clustering.md']) {
      for (const line of read(doc).split('\n').filter((l) => /node .*dist\/cli\/main\.js start/.test(l) && !l.includes('without the flag'))) {
        for (const flag of BROKER_NODE_FLAGS) expect(line, `${doc}: ${line}`).toContain(flag);
      }
    }
  });

  it('are accepted by node: the #! line runs the built executable', () => {
    // what the kernel runs for `warren …`: the #! line's program and arguments, then the file
    const [program, ...args] = read('dist/cli/main.js').split('\n')[0]!.slice(2).trim().split(' ');
    const out = execFileSync(program!, [...args, new URL('dist/cli/main.js', root).pathname, '--version'], { encoding: 'utf8' });
    expect(out.trim()).toBe((JSON.parse(read('package.json')) as { version: string }).version);
  });
});
