import { afterAll, beforeAll } from '@jest/globals';
import type { Redis } from 'ioredis';
import { FleetKeys } from '@fleet/redis';
import { type PrivateRedis, startRedisServer } from '../../../scripts/lib/redis-server.mjs';
import { type ConfigDir, makeConfigDir } from './config-dir.js';
import { cleanupPrefix, TEST_REDIS_URL, testRedis, uniquePrefix } from './isolation.js';
import { type Service, startService } from './service.js';
import { TestTaskQueue } from './task-queue.js';
import { type AppProcess, FAST_WORKER_ENV, startWorker } from './worker-process.js';

/** What a suite that talks to Redis and starts processes needs, isolated from every other suite. */
export interface IsolatedSuite {
  readonly prefix: string;
  readonly keys: FleetKeys;
  /** The suite's Redis: the shared test Redis, or its private server (from beforeAll on). */
  readonly redisUrl: string;
  /** The private server, when the suite asked for one (to stop, restart or kill it). */
  readonly server: PrivateRedis;
  /** The suite's CONFIG_DIR (from beforeAll on). */
  readonly config: ConfigDir;
  /** A connection for assertions (from beforeAll on). */
  readonly redis: Redis;
  /** The pool's queue, opened as the coordinator opens it, closed at the end. */
  queue(pool: string): TestTaskQueue;
  /** Starts a worker process on this suite's prefix and config; it is stopped at the end. */
  worker(opts: { pool: string; id?: string; concurrency?: number; env?: Record<string, string> }): AppProcess & { id: string };
  /** Starts an HTTP app (coordinator, resource manager, trend analyzer) as a process on this suite's Redis, prefix and config. */
  service(app: string, env?: Record<string, string>): Promise<Service>;
  /** Registers something to stop or close at the end: last registered, first run, all before the keys go. */
  onCleanup(fn: () => unknown): void;
}

export interface SuiteOptions {
  /** A private redis-server for this suite alone (memory-only unless `appendonly`), for tests that stop or restart Redis. */
  privateRedis?: { appendonly?: 'always' | 'everysec'; extraArgs?: string[] };
}

/** The four HTTP apps on the suite's Redis and config, the dashboard forwarding to the other three; `env` for each. */
export async function startHttpApps(
  suite: IsolatedSuite,
  env: Record<string, string> = {},
): Promise<Record<'coordinator' | 'resource-manager' | 'trend-analyzer' | 'dashboard', Service>> {
  const coordinator = await suite.service('coordinator', env);
  const rm = await suite.service('resource-manager', env);
  const analyzer = await suite.service('trend-analyzer', env);
  const dashboard = await suite.service('dashboard', {
    ...env,
    COORDINATOR_URL: coordinator.url,
    RESOURCE_MANAGER_URL: rm.url,
    TREND_ANALYZER_URL: analyzer.url,
  });
  return { coordinator, 'resource-manager': rm, 'trend-analyzer': analyzer, dashboard };
}

/**
 * Declares a suite's isolation (call it at `describe` level): a unique key prefix, a temp CONFIG_DIR holding
 * `files`, a Redis connection (to the shared test Redis, or to a private server started for the suite). At
 * the end it runs the registered clean-ups, then deletes every key under the prefix (or stops the private
 * server), closes the connection and removes the folder.
 */
export function isolatedSuite(label: string, files: Record<string, string | object>, opts: SuiteOptions = {}): IsolatedSuite {
  const prefix = uniquePrefix(label);
  const cleanups: Array<() => unknown> = [];
  const queues = new Map<string, TestTaskQueue>();
  let config: ConfigDir | undefined;
  let redis: Redis | undefined;
  let server: PrivateRedis | undefined;
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`isolatedSuite: ${what} is available from beforeAll on`);
    return value;
  };
  const suite: IsolatedSuite = {
    prefix,
    keys: new FleetKeys(prefix),
    get redisUrl() {
      return opts.privateRedis ? ready(server, 'the private Redis').url : TEST_REDIS_URL;
    },
    get server() {
      return ready(server, 'the private Redis (ask for one with { privateRedis: {} })');
    },
    get config() {
      return ready(config, 'config');
    },
    get redis() {
      return ready(redis, 'redis');
    },
    queue(pool) {
      let q = queues.get(pool);
      if (!q) {
        q = new TestTaskQueue(suite.redisUrl, prefix, pool);
        queues.set(pool, q);
      }
      return q;
    },
    worker(o) {
      const w = startWorker({ ...o, prefix, configDir: suite.config.path, redisUrl: suite.redisUrl });
      cleanups.push(() => w.stop('SIGKILL'));
      return w;
    },
    async service(app, env = {}) {
      const s = await startService(app, {
        REDIS_URL: suite.redisUrl,
        FLEET_PREFIX: prefix,
        CONFIG_DIR: suite.config.path,
        ...FAST_WORKER_ENV,
        ...env,
      });
      // SIGTERM first: a resource manager then drains its workers, which leave nothing behind in Redis.
      cleanups.push(async () => {
        const timer = setTimeout(() => void s.stop('SIGKILL'), 30_000);
        await s.stop('SIGTERM');
        clearTimeout(timer);
      });
      return s;
    },
    onCleanup(fn) {
      cleanups.push(fn);
    },
  };
  beforeAll(async () => {
    config = makeConfigDir(files);
    if (opts.privateRedis) server = await startRedisServer(opts.privateRedis);
    redis = testRedis(suite.redisUrl);
  });
  afterAll(async () => {
    for (const fn of cleanups.reverse()) await fn();
    await Promise.all([...queues.values()].map((q) => q.close()));
    if (redis) {
      if (!server) await cleanupPrefix(redis, prefix);
      redis.disconnect();
    }
    await server?.stop('SIGKILL');
    config?.remove();
  });
  return suite;
}
