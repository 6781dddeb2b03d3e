// Human-readable tables for perf.mjs and run-compare.mjs.
import { SCENARIOS } from '../scenarios/index.mjs';

export function formatNumber(x) {
  if (x === null || x === undefined) return 'n/a';
  if (typeof x !== 'number') return String(x);
  if (Number.isInteger(x)) return x.toLocaleString('en-US');
  return x.toLocaleString('en-US', { maximumFractionDigits: 3 });
}

export function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((cell, i) => (i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** The table perf.mjs prints for one run. */
export function formatRecord(record) {
  const scenario = SCENARIOS[record.scenario];
  const rows = [['metric', 'value']];
  for (const m of scenario.metrics) rows.push([m.label, formatNumber(record.metrics?.[m.key])]);
  if (record.latency && !scenario.metrics.some((m) => m.key === 'latencyP50Ms')) {
    rows.push(['latency p50 / p99 / p99.9 (ms)', `${formatNumber(record.latency.p50Ms)} / ${formatNumber(record.latency.p99Ms)} / ${formatNumber(record.latency.p999Ms)}`]);
  }
  const v = record.verification;
  if (v) {
    rows.push(['verified', v.ok ? `ok (${formatNumber(v.received)} of ${formatNumber(v.expected)})` : `FAILED: ${v.firstError ?? v.clientError ?? ''}`]);
    rows.push(['missing / dup / out-of-order / corrupt', `${v.missing ?? 0} / ${v.duplicates ?? 0} / ${v.outOfOrder ?? 0} / ${v.corrupt ?? 0}`]);
  }
  if (record.error) rows.push(['error', record.error]);
  const head = `${record.scenario} against ${record.broker.kind} (${record.broker.url}, pid ${record.broker.pid ?? 'n/a'}), ${record.date}`;
  return `${head}\n${conditions(record.options)}\n${table(rows)}`;
}

/** The conditions of a run in one line: every figure is read with them. */
export function conditions(o) {
  if (o === undefined || o === null) return '';
  const parts = [`${o.size} B`, o.persistent ? 'persistent' : 'transient', `${o.producers} producer(s)`, `${o.consumers} consumer(s)`];
  parts.push(o.noAck ? 'no-ack' : `manual ack, prefetch ${o.prefetch}${o.ackRate > 0 ? `, acks at ${o.ackRate} msg/s` : ''}`);
  parts.push(o.confirm > 0 ? `confirm window ${o.confirm}` : 'no confirms');
  if (o.rate > 0) parts.push(`${o.rate} msg/s`);
  parts.push(o.maxLag > 0 ? `producers at most ${o.maxLag} ahead` : 'no lag limit');
  parts.push(o.count !== null && o.count !== undefined ? `${o.count} messages` : `${o.duration} s`);
  if (o.warrenArgs?.length) parts.push(`warren ${o.warrenArgs.join(' ')}`);
  return `conditions: ${parts.join(', ')}`;
}
