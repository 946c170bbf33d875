import { createHash } from 'node:crypto';

export interface Timed {
  key: string;
  expectedMs: number;
}

/**
 * Longest first (ties by key, so the order is stable): pulled from one queue by every free slot, the long
 * files start early and the short ones fill the gaps, so the wall time approaches the ideal below.
 */
export function longestFirst<T extends Timed>(files: readonly T[]): T[] {
  return [...files].sort((a, b) => b.expectedMs - a.expectedMs || a.key.localeCompare(b.key));
}

/** The best any split can do on `slots` slots: the longest file, or the total spread evenly. */
export function idealMakespanMs(durations: readonly number[], slots: number): number {
  return Math.max(Math.max(0, ...durations), durations.reduce((a, b) => a + b, 0) / slots);
}

/** The shard a hash split (like Jest's `--shard i/n`) gives a file: by a hash of its path, blind to durations. */
export function hashShard(key: string, shards: number): number {
  return createHash('sha1').update(key).digest().readUInt32BE(0) % shards;
}

/** A hash split's wall time: each shard runs its files one after another; the slowest shard decides. */
export function hashSplitMakespanMs(files: readonly Timed[], shards: number): number {
  const sums = new Array<number>(shards).fill(0);
  for (const f of files) sums[hashShard(f.key, shards)] = (sums[hashShard(f.key, shards)] ?? 0) + f.expectedMs;
  return Math.max(...sums);
}
