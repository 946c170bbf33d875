export * from './anomaly.js';
export * from './descriptive.js';
export * from './regression.js';
export * from './trend.js';
export * from './change-point.js';
export { SlidingSorted } from './scratch.js';
