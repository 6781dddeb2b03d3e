// The suite's Markdown report (run-suite.mjs --markdown, and suite-merge.mjs for a suite
// run in parts): one table, the rows with a target first, least margin first.
import { formatNumber } from './report.mjs';
import { targetText } from '../suite.mjs';

/** The rows with a target, the least margin first; then the others in suite order. */
export function worstFirst(results) {
  const withTarget = results.filter((x) => x.target !== null).sort((a, b) => (a.margin ?? -Infinity) - (b.margin ?? -Infinity));
  return [...withTarget, ...results.filter((x) => x.target === null)];
}

/** `heading`: the line above the table (the run, its conditions). */
export function suiteMarkdown(heading, results) {
  const lines = [heading, '', '| figure | Warren | RabbitMQ | W/R | target | met | conditions |', '| --- | ---: | ---: | ---: | --- | --- | --- |'];
  for (const x of worstFirst(results)) {
    const rabbit = x.rabbitNote ? x.rabbitNote : formatNumber(x.rabbitmq);
    const met = x.target === null ? '' : x.met ? 'yes' : x.verified.warren < x.verified.runs.warren ? '**no** (unverified)' : '**no**';
    lines.push(`| ${x.label} | ${formatNumber(x.warren)} | ${rabbit} | ${x.ratio === null ? 'n/a' : `${x.ratio}×`} | ${targetText(x.target ?? undefined)} | ${met} | ${x.cond} |`);
  }
  return `${lines.join('\n')}\n`;
}
