export * from './connection.js';
export * from './keys.js';
export * from './worker-registry.js';
export * from './task-jobs.js';
export * from './redis-address.js';
export * from './bullmq-internals.js';
export * from './record-index.js';
