export * from './health.js';
export * from './metrics.js';
export * from './openapi.js';
export * from './ops.js';
export * from './validation.js';
