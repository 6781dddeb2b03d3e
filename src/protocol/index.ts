/** Public surface of the pure protocol layer (bytes in, values out). */
export * from './errors.js';
export * from './field-table.js';
export type * from './field-types.js';
export * from './frame-reader.js';
export * from './frame-writer.js';
export * from './generated/constants.js';
export * from './generated/methods.js';
export * from './generated/properties.js';
export * from './primitives.js';
export * from './protocol-header.js';
export * from './reply-code.js';
