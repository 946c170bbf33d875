export * from './app-settings.js';
export * from './config-error.js';
export * from './env.js';
export * from './json-file.js';
export * from './paths.js';
export * from './worker-templates.js';
export * from './resource-manager-config.js';
export * from './analyzer-config.js';
