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

/**
 * A static split by timings, as CircleCI's `--split-by=timings` and Knapsack's regular mode make it: files
 * longest first, each to the shard with the least expected time so far. Fixed before the build starts, so a
 * shard that runs slower than its history (a busy node, a file grown slower) cannot hand work to another.
 */
export function timingSplit<T extends Timed>(files: readonly T[], shards: number): T[][] {
  const out = Array.from({ length: shards }, () => [] as T[]);
  const sums = new Array<number>(shards).fill(0);
  for (const f of longestFirst(files)) {
    const i = sums.indexOf(Math.min(...sums));
    out[i]?.push(f);
    sums[i] = (sums[i] ?? 0) + f.expectedMs;
  }
  return out;
}
