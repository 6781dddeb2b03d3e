// Everything a conformance test needs, from one import: see README.md.
export * from './access-admin.js';
export * from './broker.js';
export * from './closes.js';
export * from './connections.js';
export * from './messages.js';
export * from './methods.js';
export * from './plugins.js';
export * from './raw-client.js';
export * from './scope.js';
