import { afterAll, beforeAll } from '@jest/globals';
import type { Redis } from 'ioredis';
import { FleetKeys } from '@fleet/redis';
import { type ConfigDir, makeConfigDir } from './config-dir.js';
import { cleanupPrefix, TEST_REDIS_URL, testRedis, uniquePrefix } from './isolation.js';
import { TestTaskQueue } from './task-queue.js';
import { type AppProcess, startWorker } from './worker-process.js';

/** What a suite that talks to Redis and starts processes needs, isolated from every other suite. */
export interface IsolatedSuite {
  readonly prefix: string;
  readonly keys: FleetKeys;
  /** The suite's CONFIG_DIR (from beforeAll on). */
  readonly config: ConfigDir;
  /** A connection for assertions (from beforeAll on). */
  readonly redis: Redis;
  /** The pool's queue, opened as the coordinator opens it, closed at the end. */
  queue(pool: string): TestTaskQueue;
  /** Starts a worker process on this suite's prefix and config; it is stopped at the end. */
  worker(opts: { pool: string; id?: string; concurrency?: number; env?: Record<string, string> }): AppProcess & { id: string };
  /** Registers something to stop or close at the end: last registered, first run, all before the keys go. */
  onCleanup(fn: () => unknown): void;
}

/**
 * Declares a suite's isolation (call it at `describe` level): a unique key prefix, a temp CONFIG_DIR holding
 * `files`, a Redis connection. At the end it runs the registered clean-ups, then deletes every key under
 * the prefix, closes the connection and removes the folder.
 */
export function isolatedSuite(label: string, files: Record<string, string | object>): IsolatedSuite {
  const prefix = uniquePrefix(label);
  const cleanups: Array<() => unknown> = [];
  const queues = new Map<string, TestTaskQueue>();
  let config: ConfigDir | undefined;
  let redis: Redis | undefined;
  const suite: IsolatedSuite = {
    prefix,
    keys: new FleetKeys(prefix),
    get config() {
      if (!config) throw new Error('isolatedSuite: config is available from beforeAll on');
      return config;
    },
    get redis() {
      if (!redis) throw new Error('isolatedSuite: redis is available from beforeAll on');
      return redis;
    },
    queue(pool) {
      let q = queues.get(pool);
      if (!q) {
        q = new TestTaskQueue(TEST_REDIS_URL, prefix, pool);
        queues.set(pool, q);
      }
      return q;
    },
    worker(opts) {
      const w = startWorker({ ...opts, prefix, configDir: suite.config.path, redisUrl: TEST_REDIS_URL });
      cleanups.push(() => w.stop('SIGKILL'));
      return w;
    },
    onCleanup(fn) {
      cleanups.push(fn);
    },
  };
  beforeAll(() => {
    config = makeConfigDir(files);
    redis = testRedis();
  });
  afterAll(async () => {
    for (const fn of cleanups.reverse()) await fn();
    await Promise.all([...queues.values()].map((q) => q.close()));
    if (redis) {
      await cleanupPrefix(redis, prefix);
      await redis.quit();
    }
    config?.remove();
  });
  return suite;
}
