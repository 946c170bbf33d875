export * from './access.js';
export * from './access.guard.js';
export * from './auth.module.js';
export * from './rate-limiter.js';
export * from './tokens.js';
export * from './token-store.js';
