#!/usr/bin/env node
// One Markdown table from a suite run in parts (each part a `run-suite.mjs` invocation, so
// that other work can take the bench lock between them): reads each part's summary (the
// last JSON line run-suite prints, e.g. its log) and writes the worst-first table, as
// `run-suite.mjs --markdown` does for one run.
//   node bench/suite-merge.mjs --markdown all.md part1.log part2.log …
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { brokerNodeFlags } from './lib/broker-control.mjs';
import { suiteMarkdown } from './lib/suite-markdown.mjs';

const { values, positionals } = parseArgs({ options: { markdown: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
if (values.help || positionals.length === 0 || !values.markdown) {
  process.stdout.write('Usage: node bench/suite-merge.mjs --markdown <out.md> <run-suite output>…\n');
  process.exit(values.help ? 0 : 2);
}

/** the summary line run-suite printed last */
function summaryOf(file) {
  const line = readFileSync(file, 'utf8').trim().split('\n').reverse().find((l) => l.startsWith('{"suite"'));
  if (line === undefined) throw new Error(`${file}: no suite summary line (was the run finished?)`);
  return JSON.parse(line);
}

const parts = positionals.map(summaryOf);
const heads = [...new Set(parts.map((p) => p.warren.gitHead ?? 'unknown'))];
// what differs from Warren's defaults: the node flags it always runs with are not news
const defaults = new Set(await brokerNodeFlags());
const args = [...new Set(parts.map((p) => [...(p.warren.nodeArgs ?? []).filter((f) => !defaults.has(f)), ...(p.warren.args ?? [])].join(' ')))].filter((a) => a !== '');
const loads = parts.flatMap((p) => [p.loadavg1m?.min, p.loadavg1m?.max]).filter((x) => typeof x === 'number');
const seconds = parts.reduce((n, p) => n + (p.seconds ?? 0), 0);
const repeats = [...new Set(parts.map((p) => p.repeat))];
const heading =
  `Suite run in ${parts.length} parts, ${parts[0].date} to ${parts.at(-1).date} (Warren ${heads.join(', ')}, ${args.length ? `started with ${args.join(' | ')}` : 'its defaults'}; ` +
  `medians of ${repeats.join('/')} alternating runs unless noted; ${seconds} s; load average ${loads.length ? Math.min(...loads) : '?'}–${loads.length ? Math.max(...loads) : '?'}).`;
writeFileSync(values.markdown, suiteMarkdown(heading, parts.flatMap((p) => p.results)));
