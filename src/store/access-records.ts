/**
 * Access records: users, permissions, topic permissions, vhost metadata and vhost limits
 * (store format 2). They live in their own key kinds through the Store's generic record
 * methods, so the message store can change without touching them. Values are JSON.
 *
 *   0x05 <user>                    → UserRecord
 *   0x06 <user><vhost>             → PermissionRecord
 *   0x07 <user><vhost><exchange>   → TopicPermissionRecord
 *   0x08 <vhost>                   → VhostMetadataRecord
 *   0x09 <vhost>                   → VhostLimitsRecord
 *   0x0f 'seeded'                  → empty: the default user and vhost were created once
 *
 * Strings in keys carry a u16 length prefix (keys.ts stringKey).
 */
import { stringKey } from './keys.js';
import type { Store } from './store.js';

export const AccessPrefix = {
  User: 0x05,
  Permission: 0x06,
  TopicPermission: 0x07,
  VhostMetadata: 0x08,
  VhostLimits: 0x09,
  Seeded: 0x0f,
} as const;

export interface UserRecord {
  readonly name: string;
  /** base64 salt ‖ hash, RabbitMQ's format; '' = no password */
  readonly passwordHash: string;
  readonly hashingAlgorithm: string;
  readonly tags: readonly string[];
}

export interface PermissionRecord {
  readonly user: string;
  readonly vhost: string;
  readonly configure: string;
  readonly write: string;
  readonly read: string;
}

export interface TopicPermissionRecord {
  readonly user: string;
  readonly vhost: string;
  readonly exchange: string;
  readonly write: string;
  readonly read: string;
}

export interface VhostMetadataRecord {
  readonly vhost: string;
  readonly description: string;
  readonly tags: readonly string[];
}

/** RabbitMQ's vhost limits; absent = no limit */
export interface VhostLimitsRecord {
  readonly vhost: string;
  readonly maxConnections?: number;
  readonly maxQueues?: number;
}

export interface AccessRecords {
  readonly users: UserRecord[];
  readonly permissions: PermissionRecord[];
  readonly topicPermissions: TopicPermissionRecord[];
  readonly vhostMetadata: VhostMetadataRecord[];
  readonly vhostLimits: VhostLimitsRecord[];
  /** the defaults (guest or --default-user, vhost '/') were created once: never again */
  readonly seeded: boolean;
}

const SEEDED_KEY = stringKey(AccessPrefix.Seeded, ['seeded']);
const EMPTY = Buffer.alloc(0);

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

async function load<T>(store: Store, prefix: number): Promise<T[]> {
  return (await store.loadRecords(prefix)).map(([, v]) => JSON.parse(v.toString('utf8')) as T);
}

/** Typed access to the access records; every write joins the store's open batch. */
export class AccessStore {
  constructor(private readonly store: Store) {}

  async load(): Promise<AccessRecords> {
    const s = this.store;
    return {
      users: await load<UserRecord>(s, AccessPrefix.User),
      permissions: await load<PermissionRecord>(s, AccessPrefix.Permission),
      topicPermissions: await load<TopicPermissionRecord>(s, AccessPrefix.TopicPermission),
      vhostMetadata: await load<VhostMetadataRecord>(s, AccessPrefix.VhostMetadata),
      vhostLimits: await load<VhostLimitsRecord>(s, AccessPrefix.VhostLimits),
      seeded: (await s.loadRecords(AccessPrefix.Seeded)).length > 0,
    };
  }

  putUser(u: UserRecord): void {
    this.store.putRecord(stringKey(AccessPrefix.User, [u.name]), json({ name: u.name, passwordHash: u.passwordHash, hashingAlgorithm: u.hashingAlgorithm, tags: u.tags }));
  }
  deleteUser(name: string): void {
    this.store.deleteRecord(stringKey(AccessPrefix.User, [name]));
  }
  putPermission(p: PermissionRecord): void {
    this.store.putRecord(stringKey(AccessPrefix.Permission, [p.user, p.vhost]), json({ user: p.user, vhost: p.vhost, configure: p.configure, write: p.write, read: p.read }));
  }
  deletePermission(user: string, vhost: string): void {
    this.store.deleteRecord(stringKey(AccessPrefix.Permission, [user, vhost]));
  }
  putTopicPermission(p: TopicPermissionRecord): void {
    this.store.putRecord(
      stringKey(AccessPrefix.TopicPermission, [p.user, p.vhost, p.exchange]),
      json({ user: p.user, vhost: p.vhost, exchange: p.exchange, write: p.write, read: p.read }),
    );
  }
  deleteTopicPermission(user: string, vhost: string, exchange: string): void {
    this.store.deleteRecord(stringKey(AccessPrefix.TopicPermission, [user, vhost, exchange]));
  }
  putVhostMetadata(m: VhostMetadataRecord): void {
    this.store.putRecord(stringKey(AccessPrefix.VhostMetadata, [m.vhost]), json({ vhost: m.vhost, description: m.description, tags: m.tags }));
  }
  deleteVhostMetadata(vhost: string): void {
    this.store.deleteRecord(stringKey(AccessPrefix.VhostMetadata, [vhost]));
  }
  putVhostLimits(l: VhostLimitsRecord): void {
    this.store.putRecord(stringKey(AccessPrefix.VhostLimits, [l.vhost]), json({ vhost: l.vhost, maxConnections: l.maxConnections, maxQueues: l.maxQueues }));
  }
  deleteVhostLimits(vhost: string): void {
    this.store.deleteRecord(stringKey(AccessPrefix.VhostLimits, [vhost]));
  }
  markSeeded(): void {
    this.store.putRecord(SEEDED_KEY, EMPTY);
  }
}
