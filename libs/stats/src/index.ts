export * from './anomaly.js';
export * from './descriptive.js';
export * from './regression.js';
export * from './trend.js';
export * from './alert-tracker.js';
