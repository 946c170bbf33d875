export * from './app-metrics.js';
