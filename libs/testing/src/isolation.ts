import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { loadCommonSettings } from '@fleet/config';
import { createRedis, deleteMatching, FleetKeys } from '@fleet/redis';

/** The Redis the suite runs against (`npm test` sets REDIS_URL, starting a private server if needed). */
export const TEST_REDIS_URL = loadCommonSettings(process.env).redisUrl;

/** A key prefix no other test run shares, so suites never see each other's queues or streams. */
export function uniquePrefix(label = 't'): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** A consumer-role connection for test assertions; close it in afterAll. */
export function testRedis(url = TEST_REDIS_URL): Redis {
  return createRedis(url, 'consumer', 'test');
}

/** Deletes every key under `prefix` and returns how many there were. */
export function cleanupPrefix(redis: Redis, prefix: string): Promise<number> {
  return deleteMatching(redis, new FleetKeys(prefix).everything);
}
