export * from './contract-pipe.js';
export * from './http-app.js';
export * from './http-errors.js';
export * from './http-exception.filter.js';
export * from './pipe-errors.js';
export * from './run-main.js';
export * from './logging.js';
export * from './tick-runner.js';
