export * from './junit-build.js';
export * from './junit-parse.js';
export * from './run-outcome.js';
export * from './run-request.js';
export * from './shard-order.js';
export * from './dependency-release.js';
export * from './attempt-outcome.js';
export * from './build-request.js';
