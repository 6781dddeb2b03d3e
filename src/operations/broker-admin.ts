import * as admin from './access-admin.js';
import { importDefinitions, type DefinitionsReport } from './definitions.js';
import type { Core } from './core.js';
import { SYSTEM_USER, type Actor } from './session.js';
import type { PermissionRecord, TopicPermissionRecord, UserRecord } from '../store/access-records.js';

/**
 * The broker's own administration API (`RunningBroker.admin`): users, vhosts, permissions,
 * topic permissions and vhost limits, acting as the broker itself (no tag needed). Every
 * method is the operation of operations/access-admin.ts that the management API calls for
 * an authenticated administrator; each promise resolves once the change is durable and
 * rejects with an AmqpChannelError (404 missing user/vhost, 406 invalid input).
 */
export class BrokerAdmin {
  private readonly actor: Actor;

  constructor(core: Core) {
    this.actor = { core, user: SYSTEM_USER };
  }

  /** Creates a user or replaces its password/tags: `{ password }` or `{ passwordHash, hashingAlgorithm }` (RabbitMQ format). */
  async addUser(name: string, settings: admin.UserSettings = {}): Promise<void> {
    await admin.putUser(this.actor, name, settings);
  }
  async deleteUser(name: string): Promise<void> {
    await admin.deleteUser(this.actor, name);
  }
  users(): UserRecord[] {
    return admin.listUsers(this.actor);
  }

  async addVhost(name: string, settings: admin.VhostSettings = {}): Promise<void> {
    await admin.putVhost(this.actor, name, settings);
  }
  async deleteVhost(name: string): Promise<void> {
    await admin.deleteVhost(this.actor, name);
  }
  vhosts(): admin.VhostInfo[] {
    return admin.listVhosts(this.actor);
  }

  async setPermissions(user: string, vhost: string, permissions: admin.PermissionSettings): Promise<void> {
    await admin.setPermissions(this.actor, user, vhost, permissions);
  }
  async clearPermissions(user: string, vhost: string): Promise<void> {
    await admin.clearPermissions(this.actor, user, vhost);
  }
  permissions(): PermissionRecord[] {
    return admin.listPermissions(this.actor);
  }

  async setTopicPermissions(user: string, vhost: string, permissions: admin.TopicPermissionSettings): Promise<void> {
    await admin.setTopicPermissions(this.actor, user, vhost, permissions);
  }
  async clearTopicPermissions(user: string, vhost: string, exchange?: string): Promise<void> {
    await admin.clearTopicPermissions(this.actor, user, vhost, exchange);
  }
  topicPermissions(): TopicPermissionRecord[] {
    return admin.listTopicPermissions(this.actor);
  }

  async setVhostLimits(vhost: string, limits: admin.VhostLimitSettings): Promise<void> {
    await admin.setVhostLimits(this.actor, vhost, limits);
  }
  /** Imports RabbitMQ definitions (the JSON object of an export): see operations/definitions.ts for what is imported. */
  async importDefinitions(definitions: unknown): Promise<DefinitionsReport> {
    return importDefinitions(this.actor, definitions);
  }

  async clearVhostLimits(vhost: string, limit?: 'max-connections' | 'max-queues'): Promise<void> {
    await admin.clearVhostLimits(this.actor, vhost, limit);
  }
}
