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

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? undefined : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const parentOf = (key: string) => key.slice(0, Math.max(0, key.lastIndexOf('/')));

/**
 * Each file's expected run time (ms) for the order, when some have no history: the median of the files with
 * history in its nearest folder that has any (a folder's tests are alike: integration tests with integration
 * tests); else, when its size is known, its size at the median milliseconds per byte of the files with history
 * (or, with no history at all, the default time scaled by its size against the median size: the largest
 * files first); else the median of all files with history, or the default.
 */
export function expectedDurations(files: ReadonlyArray<{ key: string; historyMs: number | null; bytes?: number }>, defaultMs: number): number[] {
  const known = files.filter((f): f is typeof f & { historyMs: number } => f.historyMs !== null);
  // Each folder's median over the files with history below it, computed once (not per file that asks).
  const below = new Map<string, number[]>();
  for (const f of known) {
    for (let dir = parentOf(f.key); dir !== ''; dir = parentOf(dir)) {
      const list = below.get(dir);
      if (list) list.push(f.historyMs);
      else below.set(dir, [f.historyMs]);
    }
  }
  const folderMedian = new Map([...below].map(([dir, ms]) => [dir, median(ms)]));
  const msPerByte = median(known.filter((f) => (f.bytes ?? 0) > 0).map((f) => f.historyMs / (f.bytes as number)));
  const medianBytes = median(files.filter((f) => (f.bytes ?? 0) > 0).map((f) => f.bytes as number));
  const overall = median(known.map((f) => f.historyMs)) ?? defaultMs;
  return files.map((f) => {
    if (f.historyMs !== null) return f.historyMs;
    for (let dir = parentOf(f.key); dir !== ''; dir = parentOf(dir)) {
      const folder = folderMedian.get(dir);
      if (folder !== undefined) return folder;
    }
    if (f.bytes !== undefined && f.bytes > 0) {
      if (msPerByte !== undefined) return f.bytes * msPerByte;
      if (known.length === 0 && medianBytes) return (defaultMs * f.bytes) / medianBytes;
    }
    return overall;
  });
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
