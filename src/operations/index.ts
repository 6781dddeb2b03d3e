/**
 * The operations layer: every declare, delete, bind, unbind, purge, publish, get, consume
 * and cancel, and the administration of users, vhosts, permissions and limits, with access
 * checks (permissions.ts) and commit waiting (Completion) in one place. Front ends (the AMQP
 * connection, the management API, the CLI) call these and map the errors they throw:
 * AmqpChannelError / AmqpConnectionError carry RabbitMQ's reply code (403 access refused,
 * 404 not found, 405 locked, 406 precondition failed or invalid input, 530 not allowed).
 * See docs/architecture.md.
 */
export { Completion } from './completion.js';
export { Core, type ClientConnection, type Commits, type CoreOptions, type Flow, type FlowWaiter } from './core.js';
export { Session, SYSTEM_USER, type Actor, type AuthenticatedUser } from './session.js';
export * from './exchanges.js';
export * from './queues.js';
export * from './basic.js';
export * from './publish.js';
export * from './authenticate.js';
export * from './access-admin.js';
export { DIRECT_REPLY_TO, isDirectReplyAddress, type DirectReplySink } from './direct-reply-to.js';
export type { CommitListener } from '../store/store.js';
export { BrokerAdmin } from './broker-admin.js';
export { importDefinitions, type DefinitionsReport } from './definitions.js';
export { putPolicy, deletePolicy, listPolicies, type PolicySettings } from './policies.js';
export { browseQueue } from './browse.js';
