import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { loadCommonSettings } from '@fleet/config';
import { createRedis, deleteMatching, FleetKeys } from '@fleet/redis';

/** The Redis the suite runs against (`npm test` sets REDIS_URL, starting a private server if needed). */
export const TEST_REDIS_URL = loadCommonSettings(process.env).redisUrl;

/**
 * A key prefix no other test run shares, so suites never see each other's queues or streams. Under
 * FLEET_TEST_PREFIX_ROOT (a run against a Redis whose ACL admits only keys starting with it) every prefix
 * starts with that root.
 */
export function uniquePrefix(label = 't'): string {
  return `${process.env.FLEET_TEST_PREFIX_ROOT ?? ''}${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** A consumer-role connection for test assertions; close it in afterAll. */
export function testRedis(url = TEST_REDIS_URL): Redis {
  return createRedis(url, 'consumer', 'test');
}

/** Deletes every key under `prefix` and returns how many there were. */
export function cleanupPrefix(redis: Redis, prefix: string): Promise<number> {
  return deleteMatching(redis, new FleetKeys(prefix).everything);
}
