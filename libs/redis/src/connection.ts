import { Logger } from '@nestjs/common';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from '@fleet/config';
import type { FleetKeys } from './keys.js';
import { clusterAddress, sentinelOptions } from './redis-address.js';

/**
 * Connections by role, as BullMQ's production guide advises:
 * - `producer` (HTTP handlers): fails fast when Redis is down, so a request gets a 503 instead of hanging;
 * - `consumer` (the fleet's own loops: ticks, heartbeats, timing events, stream reads): survives a Redis
 *   restart (`maxRetriesPerRequest: null`, commands wait while it reconnects), but no command waits longer
 *   than `COMMAND_TIMEOUT_MS`: a loop gets an error it can log and retry instead of hanging for ever;
 * - `queue` (handed to a BullMQ Worker): like `consumer` without the command timeout, which would cut
 *   BullMQ's own blocking commands short.
 */
export type RedisRole = 'producer' | 'consumer' | 'queue';

/** Longest a fleet command waits for its reply (blocking reads ask for less than this). */
export const COMMAND_TIMEOUT_MS = 5000;

export function redisOptions(role: RedisRole, name: string): RedisOptions {
  const common: RedisOptions = {
    connectionName: name,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 3000),
  };
  switch (role) {
    case 'producer':
      return { ...common, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 3000, commandTimeout: COMMAND_TIMEOUT_MS };
    case 'consumer':
      return { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true, commandTimeout: COMMAND_TIMEOUT_MS };
    case 'queue':
      return { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true };
  }
}

/** Resolves with `promise`, or rejects after `ms` with a message naming `what` (the promise goes on). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** How long a best-effort write on the way out (leaving the registry, giving up a lease) may wait. */
export const SHUTDOWN_STEP_MS = 1000;

/** Runs a best-effort step of a shutdown: bounded, and never failing the shutdown. */
export async function bestEffort(step: Promise<unknown>, what: string, logger?: { warn(message: string): void }): Promise<void> {
  try {
    await withTimeout(step, SHUTDOWN_STEP_MS, what);
  } catch (err) {
    logger?.warn(`${what} skipped: ${(err as Error).message}`);
  }
}

/** A bounded PING: what every app's health check asks. */
export function pingWithin(redis: Redis, ms = 1000): Promise<string> {
  return withTimeout(redis.ping(), ms, 'Redis PING');
}

/**
 * A Redis Cluster client typed as a `Redis`: the fleet's commands all take keys under one hash tag, so each
 * goes to the one node that owns the slot; BullMQ accepts a Cluster connection as it is.
 */
function clusterClient(c: NonNullable<ReturnType<typeof clusterAddress>>, role: RedisRole, name: string): Redis {
  const { retryStrategy, enableOfflineQueue, ...perNode } = redisOptions(role, name);
  const cluster = new Cluster(c.nodes, {
    clusterRetryStrategy: retryStrategy as (times: number) => number,
    enableOfflineQueue,
    enableReadyCheck: true,
    redisOptions: { ...perNode, ...(c.username && { username: c.username }), ...(c.password !== undefined && { password: c.password }) },
  });
  return cluster as unknown as Redis;
}

/** Opens a connection with an `error` listener attached (an unlistened ioredis error would crash the process). */
export function createRedis(url: string, role: RedisRole, name: string, logger = new Logger(`redis:${name}`)): Redis {
  const sentinel = sentinelOptions(url);
  const cluster = clusterAddress(url);
  const redis = cluster
    ? clusterClient(cluster, role, name)
    : sentinel
      ? new Redis({ ...redisOptions(role, name), ...sentinel })
      : new Redis(url, redisOptions(role, name));
  let lastError = '';
  redis.on('error', (err: Error) => {
    if (err.message !== lastError) logger.warn(`${err.message}`);
    lastError = err.message;
  });
  redis.on('ready', () => {
    if (lastError !== '') logger.log('reconnected');
    lastError = '';
  });
  return redis;
}

/** Waits until the connection is ready, or throws after `timeoutMs` with the URL in the message. */
export async function waitUntilReady(redis: Redis, url: string, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis at ${url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')} is not reachable (waited ${timeoutMs} ms)`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/**
 * Records the fleet's key layout (`FLEET_SPREAD`) if none is recorded, and refuses to start (a configuration
 * error, exit 78) an app whose layout differs: a worker on the other layout would wait on a queue nobody fills.
 */
export async function checkLayout(redis: Redis, keys: FleetKeys): Promise<void> {
  const recorded = await redis.set(keys.layout, keys.spread, 'NX', 'GET');
  if (recorded !== null && recorded !== keys.spread) {
    throw new ConfigError('environment', [
      {
        field: 'FLEET_SPREAD',
        reason: `is "${keys.spread}", but fleet ${keys.prefix} lays its keys out as "${recorded}" (${keys.layout}): every app of a fleet must use the same FLEET_SPREAD`,
      },
    ]);
  }
}

/** Every key matching any of `patterns`, a batch at a time, with SCAN (never KEYS). */
async function* scanKeys(redis: Redis, patterns: string | readonly string[]): AsyncGenerator<string[]> {
  const cluster: unknown = redis;
  if (cluster instanceof Cluster) {
    for (const node of cluster.nodes('master')) yield* scanKeys(node, patterns);
    return;
  }
  for (const pattern of typeof patterns === 'string' ? [patterns] : patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }
}

/** Deletes every key matching `patterns` (UNLINK); returns how many. */
export async function deleteMatching(redis: Redis, patterns: string | readonly string[]): Promise<number> {
  let deleted = 0;
  const cluster = (redis as unknown) instanceof Cluster;
  for await (const keys of scanKeys(redis, patterns)) {
    // On a cluster one key at a time: keys that match may sit in different slots.
    deleted += cluster ? (await Promise.all(keys.map((k) => redis.unlink(k)))).reduce((s, n) => s + n, 0) : await redis.unlink(...keys);
  }
  return deleted;
}

/** Counts keys matching `patterns` (for tests and diagnostics). */
export async function countMatching(redis: Redis, patterns: string | readonly string[]): Promise<number> {
  let count = 0;
  for await (const keys of scanKeys(redis, patterns)) count += keys.length;
  return count;
}

/**
 * The master (`host:port`) that serves `key`'s slot on a Redis Cluster, from `CLUSTER SLOTS`; undefined on a
 * single server. Tells where a spread pool's keys live.
 */
export async function clusterMasterOf(redis: Redis, key: string): Promise<string | undefined> {
  if (!((redis as unknown) instanceof Cluster)) return undefined;
  const slot = Number(await redis.cluster('KEYSLOT', key));
  const owner = (await redis.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to)?.[2];
  return owner && `${owner[0]}:${owner[1]}`;
}

/** Whether Redis refused writes (out of memory, a read-only replica, a failed disk save): an HTTP 503 too. */
export function isRedisRefusal(err: unknown): boolean {
  return err instanceof Error && /^(OOM|EXECABORT|READONLY|MISCONF|NOREPLICAS)\b/.test(err.message);
}

/** Whether an error means "Redis cannot be reached right now" (an HTTP 503), not a bug. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH') return true;
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /enableOfflineQueue|Connection is closed|connect ECONNREFUSED|Reached the max retries per request|Command timed out|no answer within|LOADING/i.test(
      err.message,
    )
  );
}
