export * from './allow-list.js';
export * from './cache-plan.js';
export * from './git-errors.js';
export * from './tree-match.js';
export * from './git.js';
export * from './file-lock.js';
