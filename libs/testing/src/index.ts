export * from './clients.js';
export * from './config-dir.js';
export * from './isolated-suite.js';
export * from './isolation.js';
export * from './seed-fixtures.js';
export * from './service.js';
export * from './task-queue.js';
export * from './wait-for.js';
export * from './worker-process.js';
export {
  findRedisServer,
  fleetAclRules,
  freePort,
  type PrivateRedis,
  startRedisCluster,
  startRedisServer,
} from '../../../scripts/lib/redis-server.mjs';
export * from './git-repos.js';
export * from './python.js';
export * from './redis-monitor.js';
