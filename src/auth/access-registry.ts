import type {
  AccessRecords,
  AccessStore,
  PermissionRecord,
  TopicPermissionRecord,
  UserRecord,
  VhostLimitsRecord,
  VhostMetadataRecord,
} from '../store/access-records.js';

/** configure / write / read regular expressions of one user on one vhost, compiled once. */
export class Permission {
  readonly configure: RegExp;
  readonly write: RegExp;
  readonly read: RegExp;
  constructor(readonly record: PermissionRecord) {
    this.configure = compilePermission(record.configure);
    this.write = compilePermission(record.write);
    this.read = compilePermission(record.read);
  }
}

/** Topic permission of one user on one exchange of one vhost (patterns still hold {username}/{vhost}). */
export class TopicPermission {
  readonly write: RegExp;
  readonly read: RegExp;
  constructor(readonly record: TopicPermissionRecord) {
    // RabbitMQ: the variables are replaced in the pattern text before it is compiled
    const vars = { username: record.user, vhost: record.vhost };
    this.write = compilePermission(expandVariables(record.write, vars));
    this.read = compilePermission(expandVariables(record.read, vars));
  }
}

/** RabbitMQ: an empty pattern means "nothing" (^$). Patterns are PCRE; JS RegExp agrees on the usual ones. */
export function compilePermission(pattern: string): RegExp {
  return new RegExp(pattern === '' ? '^$' : pattern);
}

/** RabbitMQ's topic permission variables, replaced verbatim (not escaped). */
export function expandVariables(pattern: string, vars: { username: string; vhost: string }): string {
  return pattern.replaceAll('{username}', vars.username).replaceAll('{vhost}', vars.vhost);
}

export interface VhostLimits {
  /** -1 or absent = unlimited */
  readonly maxConnections?: number;
  readonly maxQueues?: number;
}

/**
 * Users, permissions, topic permissions and vhost metadata and limits, in memory and in the
 * store. Plain state: who may do what is decided in operations/permissions.ts, and what is
 * valid in the operations that change it. `version` changes with every change, so caches
 * of access decisions (a channel's publish permits) know when to look again.
 */
export class AccessRegistry {
  readonly users = new Map<string, UserRecord>();
  /** user → vhost → permission */
  private readonly permissions = new Map<string, Map<string, Permission>>();
  /** user → vhost → exchange → topic permission */
  private readonly topicPermissions = new Map<string, Map<string, Map<string, TopicPermission>>>();
  readonly vhostMetadata = new Map<string, VhostMetadataRecord>();
  readonly vhostLimits = new Map<string, VhostLimitsRecord>();
  version = 1;
  seeded = false;

  constructor(private readonly store: AccessStore) {}

  /** Loads what the store holds (at startup). */
  restore(records: AccessRecords): void {
    for (const u of records.users) this.users.set(u.name, u);
    for (const p of records.permissions) this.permissionsOf(p.user).set(p.vhost, new Permission(p));
    for (const t of records.topicPermissions) this.topicPermissionsOf(t.user, t.vhost).set(t.exchange, new TopicPermission(t));
    for (const m of records.vhostMetadata) this.vhostMetadata.set(m.vhost, m);
    for (const l of records.vhostLimits) this.vhostLimits.set(l.vhost, l);
    this.seeded = records.seeded;
    this.version++;
  }

  markSeeded(): void {
    this.seeded = true;
    this.store.markSeeded();
  }

  // ---- users

  putUser(user: UserRecord): void {
    this.users.set(user.name, user);
    this.store.putUser(user);
    this.version++;
  }

  /** Removes the user with every permission and topic permission it had. */
  deleteUser(name: string): void {
    this.users.delete(name);
    this.store.deleteUser(name);
    for (const vhost of this.permissions.get(name)?.keys() ?? []) this.store.deletePermission(name, vhost);
    this.permissions.delete(name);
    for (const [vhost, byExchange] of this.topicPermissions.get(name) ?? []) {
      for (const exchange of byExchange.keys()) this.store.deleteTopicPermission(name, vhost, exchange);
    }
    this.topicPermissions.delete(name);
    this.version++;
  }

  // ---- permissions

  permission(user: string, vhost: string): Permission | undefined {
    return this.permissions.get(user)?.get(vhost);
  }

  allPermissions(): PermissionRecord[] {
    const out: PermissionRecord[] = [];
    for (const byVhost of this.permissions.values()) for (const p of byVhost.values()) out.push(p.record);
    return out;
  }

  /** @throws SyntaxError for a pattern that is not a regular expression */
  setPermission(record: PermissionRecord): void {
    const p = new Permission(record);
    this.permissionsOf(record.user).set(record.vhost, p);
    this.store.putPermission(record);
    this.version++;
  }

  clearPermission(user: string, vhost: string): boolean {
    const had = this.permissions.get(user)?.delete(vhost) ?? false;
    if (had) {
      this.store.deletePermission(user, vhost);
      this.version++;
    }
    return had;
  }

  topicPermission(user: string, vhost: string, exchange: string): TopicPermission | undefined {
    return this.topicPermissions.get(user)?.get(vhost)?.get(exchange);
  }

  allTopicPermissions(): TopicPermissionRecord[] {
    const out: TopicPermissionRecord[] = [];
    for (const byVhost of this.topicPermissions.values()) {
      for (const byExchange of byVhost.values()) for (const t of byExchange.values()) out.push(t.record);
    }
    return out;
  }

  /** @throws SyntaxError for a pattern that is not a regular expression */
  setTopicPermission(record: TopicPermissionRecord): void {
    const t = new TopicPermission(record);
    this.topicPermissionsOf(record.user, record.vhost).set(record.exchange, t);
    this.store.putTopicPermission(record);
    this.version++;
  }

  /** Clears one exchange's topic permission, or all of the user's on the vhost when `exchange` is undefined. */
  clearTopicPermission(user: string, vhost: string, exchange?: string): boolean {
    const byExchange = this.topicPermissions.get(user)?.get(vhost);
    if (byExchange === undefined) return false;
    const names = exchange === undefined ? [...byExchange.keys()] : byExchange.has(exchange) ? [exchange] : [];
    for (const name of names) {
      byExchange.delete(name);
      this.store.deleteTopicPermission(user, vhost, name);
    }
    if (names.length > 0) this.version++;
    return names.length > 0;
  }

  // ---- vhosts

  setVhostMetadata(record: VhostMetadataRecord): void {
    this.vhostMetadata.set(record.vhost, record);
    this.store.putVhostMetadata(record);
  }

  limits(vhost: string): VhostLimits {
    return this.vhostLimits.get(vhost) ?? NO_LIMITS;
  }

  setVhostLimits(record: VhostLimitsRecord): void {
    if (record.maxConnections === undefined && record.maxQueues === undefined) {
      this.vhostLimits.delete(record.vhost);
      this.store.deleteVhostLimits(record.vhost);
    } else {
      this.vhostLimits.set(record.vhost, record);
      this.store.putVhostLimits(record);
    }
    this.version++;
  }

  /** A vhost is deleted: its metadata, limits, and every permission on it go too (RabbitMQ). */
  forgetVhost(vhost: string): void {
    if (this.vhostMetadata.delete(vhost)) this.store.deleteVhostMetadata(vhost);
    if (this.vhostLimits.delete(vhost)) this.store.deleteVhostLimits(vhost);
    for (const [user, byVhost] of this.permissions) {
      if (byVhost.delete(vhost)) this.store.deletePermission(user, vhost);
    }
    for (const user of this.topicPermissions.keys()) this.clearTopicPermission(user, vhost);
    this.version++;
  }

  private permissionsOf(user: string): Map<string, Permission> {
    let m = this.permissions.get(user);
    if (m === undefined) this.permissions.set(user, (m = new Map()));
    return m;
  }

  private topicPermissionsOf(user: string, vhost: string): Map<string, TopicPermission> {
    let byVhost = this.topicPermissions.get(user);
    if (byVhost === undefined) this.topicPermissions.set(user, (byVhost = new Map()));
    let m = byVhost.get(vhost);
    if (m === undefined) byVhost.set(vhost, (m = new Map()));
    return m;
  }
}

const NO_LIMITS: VhostLimits = {};
