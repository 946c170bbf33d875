import type { Redis } from 'ioredis';

/**
 * Keeps at most `max` members in an index sorted set, the lowest scores (the oldest) going first, and returns
 * the members it evicted so the caller can delete what they name. ZPOPMIN is atomic: with several
 * coordinators trimming at once, each member is evicted once.
 */
export async function trimIndex(redis: Redis, index: string, max: number): Promise<string[]> {
  const over = (await redis.zcard(index)) - max;
  if (over <= 0) return [];
  const popped = await redis.zpopmin(index, over);
  return popped.filter((_, i) => i % 2 === 0);
}

/** Deletes keys in slices (UNLINK: freed off Redis's main thread). */
export async function unlinkAll(redis: Redis, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 500) await redis.unlink(...keys.slice(i, i + 500));
}
