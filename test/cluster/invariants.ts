import type { WarrenCluster } from './harness.js';
import type { Workload } from './workload.js';

export interface InvariantReport {
  readonly confirmed: number;
  readonly delivered: number;
  readonly missing: string[];
  readonly badDuplicates: number;
  readonly overlaps: string[];
  readonly stores: { id: string; digest: string; applied: number; keys: number }[];
}

/**
 * After the workload stopped and the queue was drained: every confirmed message was
 * delivered; no duplicate on one connection lacks `redelivered`; leader terms never
 * overlap; and once all nodes are stopped, every store (with the committed records its
 * log holds applied) is identical.
 */
export async function checkInvariants(cluster: WarrenCluster, workload: Workload): Promise<InvariantReport> {
  const terms = cluster.terms();
  const overlaps: string[] = [];
  for (let i = 1; i < terms.length; i++) {
    const a = terms[i - 1]!;
    const b = terms[i]!;
    if (a.to > b.from) overlaps.push(`term ${a.term} (${a.node}) lasted until ${a.to}, term ${b.term} (${b.node}) began at ${b.from}`);
  }
  await cluster.stopAll();
  const upTo = await cluster.maxApplied();
  const stores = [];
  for (const n of cluster.nodes) stores.push({ id: n.id, ...(await cluster.storeDigest(n.id, upTo)) });
  return {
    confirmed: workload.confirmed.size,
    delivered: workload.deliveries.length,
    missing: workload.missing(),
    badDuplicates: workload.badDuplicates().length,
    overlaps,
    stores,
  };
}
