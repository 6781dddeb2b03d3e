// The scenario registry. A scenario is { name, description, defaults, adjust?, metrics, run }:
// run(options, broker, log) resolves with { metrics, phases, latency, verification }, and
// `metrics` lists the headline figures run-compare.mjs puts side by side.
import { backlog } from './backlog.mjs';
import { backlogTransient } from './backlog-transient.mjs';
import { deleteStall, purgeStall } from './delete-stall.mjs';
import { flood } from './flood.mjs';
import { idle } from './idle.mjs';
import { rpcDirect, rpcQueue } from './rpc.mjs';
import { ack, body1k, body64k, confirm, fanout, latency, publishConfirm, throughput, topic } from './steady.mjs';

export const SCENARIOS = {
  backlog,
  throughput,
  latency,
  ack,
  confirm,
  'publish-confirm': publishConfirm,
  fanout,
  topic,
  body1k,
  body64k,
  'rpc-queue': rpcQueue,
  'rpc-direct': rpcDirect,
  idle,
  'backlog-transient': backlogTransient,
  flood,
  'delete-stall': deleteStall,
  'purge-stall': purgeStall,
};
