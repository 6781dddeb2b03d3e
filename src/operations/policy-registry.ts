import { PolicyStore, type PolicyRecord } from '../store/policy-records.js';
import type { Store } from '../store/store.js';
import { compilePolicy, type CompiledPolicy } from '../vhost/policy.js';
import type { Vhost } from '../vhost/vhost.js';

/** Every vhost's policies and operator policies, in memory and in the store; a change is applied to the vhost at once. */
export class PolicyRegistry {
  private readonly store: PolicyStore;
  /** vhost → name → policy */
  private readonly policies = new Map<string, Map<string, CompiledPolicy>>();
  private readonly operatorPolicies = new Map<string, Map<string, CompiledPolicy>>();

  constructor(
    store: Store,
    private readonly vhosts: ReadonlyMap<string, Vhost>,
  ) {
    this.store = new PolicyStore(store);
  }

  /** Startup: the stored policies, applied to the recovered queues and exchanges. */
  async restore(): Promise<void> {
    for (const operator of [false, true]) {
      for (const r of await this.store.load(operator)) {
        try {
          this.map(operator, r.vhost).set(r.name, compilePolicy(r));
        } catch {
          // a pattern that no longer compiles: skipped (it was validated when it was set)
        }
      }
    }
    for (const v of this.vhosts.keys()) this.apply(v);
  }

  private map(operator: boolean, vhost: string): Map<string, CompiledPolicy> {
    const all = operator ? this.operatorPolicies : this.policies;
    let m = all.get(vhost);
    if (m === undefined) {
      m = new Map();
      all.set(vhost, m);
    }
    return m;
  }

  put(record: PolicyRecord, operator: boolean): void {
    const compiled = compilePolicy(record);
    this.map(operator, record.vhost).set(record.name, compiled);
    this.store.put(record, operator);
    this.apply(record.vhost);
  }

  delete(vhost: string, name: string, operator: boolean): boolean {
    const m = (operator ? this.operatorPolicies : this.policies).get(vhost);
    if (m === undefined || !m.delete(name)) return false;
    this.store.delete(vhost, name, operator);
    this.apply(vhost);
    return true;
  }

  list(vhost: string | null, operator: boolean): CompiledPolicy[] {
    const all = operator ? this.operatorPolicies : this.policies;
    const out: CompiledPolicy[] = [];
    for (const [v, m] of all) if (vhost === null || v === vhost) out.push(...m.values());
    return out.sort((a, b) => (a.vhost === b.vhost ? (a.name < b.name ? -1 : 1) : a.vhost < b.vhost ? -1 : 1));
  }

  /** A vhost was deleted: its policies go too. */
  forgetVhost(vhost: string): void {
    for (const operator of [false, true]) {
      const m = (operator ? this.operatorPolicies : this.policies).get(vhost);
      if (m === undefined) continue;
      for (const name of m.keys()) this.store.delete(vhost, name, operator);
      (operator ? this.operatorPolicies : this.policies).delete(vhost);
    }
  }

  /** Applies the current policies to a vhost's queues and exchanges (also after a vhost is created). */
  apply(vhost: string): void {
    this.vhosts.get(vhost)?.setPolicies(this.policies.get(vhost) ?? new Map(), this.operatorPolicies.get(vhost) ?? new Map());
  }
}
