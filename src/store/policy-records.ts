/**
 * Policy records (store format 3): policies and operator policies, through the Store's
 * generic record methods, JSON values.
 *
 *   0x0a <vhost><name>   → PolicyRecord (a policy)
 *   0x0b <vhost><name>   → PolicyRecord (an operator policy)
 */
import { stringKey } from './keys.js';
import type { Store } from './store.js';

export const PolicyPrefix = { Policy: 0x0a, OperatorPolicy: 0x0b } as const;

export interface PolicyRecord {
  readonly vhost: string;
  readonly name: string;
  readonly pattern: string;
  readonly applyTo: 'queues' | 'exchanges' | 'all';
  readonly priority: number;
  readonly definition: Readonly<Record<string, unknown>>;
}

export class PolicyStore {
  constructor(private readonly store: Store) {}

  async load(operator: boolean): Promise<PolicyRecord[]> {
    const rows = await this.store.loadRecords(operator ? PolicyPrefix.OperatorPolicy : PolicyPrefix.Policy);
    return rows.map(([, v]) => JSON.parse(v.toString('utf8')) as PolicyRecord);
  }

  put(p: PolicyRecord, operator: boolean): void {
    const value = { vhost: p.vhost, name: p.name, pattern: p.pattern, applyTo: p.applyTo, priority: p.priority, definition: p.definition };
    this.store.putRecord(stringKey(operator ? PolicyPrefix.OperatorPolicy : PolicyPrefix.Policy, [p.vhost, p.name]), Buffer.from(JSON.stringify(value)));
  }

  delete(vhost: string, name: string, operator: boolean): void {
    this.store.deleteRecord(stringKey(operator ? PolicyPrefix.OperatorPolicy : PolicyPrefix.Policy, [vhost, name]));
  }
}
