import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ALLOWED_IMPORTS } from './layers.js';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Every relative module a file names: import/export … from, import(), import type. */
export function importedSpecifiers(text: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.[^'"]+)['"]/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push(m[1]!);
  return out;
}

/** The layer of a file: its top folder under src/, or the root file's name without .ts. */
function layerOf(path: string): string {
  const rel = relative(SRC, path).split(sep);
  return rel.length === 1 ? rel[0]!.replace(/\.(ts|js)$/, '') : rel[0]!;
}

function violations(): string[] {
  const found: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    const allowed = ALLOWED_IMPORTS[from];
    if (allowed === undefined) {
      found.push(`${relative(SRC, file)}: folder '${from}' has no rule in test/architecture/layers.ts (add it and to docs/architecture.md)`);
      continue;
    }
    for (const spec of importedSpecifiers(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(SRC)) continue; // package.json and friends
      const to = layerOf(target);
      if (to === from || allowed.includes('*') || allowed.includes(to)) continue;
      found.push(`${relative(SRC, file)} imports ${spec} (${from} → ${to} is not allowed)`);
    }
  }
  return found;
}

describe('layering (docs/architecture.md)', () => {
  it('every import in src/ follows the rules', () => {
    expect(violations()).toEqual([]);
  });

  it('the rules form no cycle: a lower layer never imports a higher one', () => {
    const graph = new Map(Object.entries(ALLOWED_IMPORTS).map(([k, v]) => [k, v.filter((t) => t !== '*')]));
    const visiting = new Set<string>();
    const done = new Set<string>();
    const cycles: string[] = [];
    const visit = (n: string, path: string[]): void => {
      if (done.has(n)) return;
      if (visiting.has(n)) {
        cycles.push([...path, n].join(' → '));
        return;
      }
      visiting.add(n);
      for (const m of graph.get(n) ?? []) visit(m, [...path, n]);
      visiting.delete(n);
      done.add(n);
    };
    for (const n of graph.keys()) visit(n, []);
    expect(cycles).toEqual([]);
  });

  it('the check sees every form of import (so it can fail)', () => {
    const text = [
      "import { a } from '../store/store.js';",
      "import type { B } from '../vhost/vhost.js';",
      "export { c } from './c.js';",
      "const d = await import('../index.js');",
      "type E = import('../queue/queue.js').Queue;",
      "import '../side-effect.js';",
    ].join('\n');
    expect(importedSpecifiers(text)).toEqual(['../store/store.js', '../vhost/vhost.js', './c.js', '../index.js', '../queue/queue.js', '../side-effect.js']);
  });
});
