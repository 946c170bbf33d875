export * from './forecast.js';
export * from './scaling-policy.js';
export * from './quotas.js';
export * from './host-plan.js';
