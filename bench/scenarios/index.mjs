// The scenario registry. A scenario is { name, description, defaults, adjust?, metrics, run }:
// run(options, broker, log) resolves with { metrics, phases, latency, verification }, and
// `metrics` lists the headline figures run-compare.mjs puts side by side. New scenarios
// (fanout, topic, RPC, idle connections) add a module here.
import { backlog } from './backlog.mjs';
import { ack, body1k, body64k, confirm, fanout, latency, throughput, topic } from './steady.mjs';

export const SCENARIOS = { backlog, throughput, latency, ack, confirm, fanout, topic, body1k, body64k };
