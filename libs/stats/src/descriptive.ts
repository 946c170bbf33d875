import { sortedCopy } from './scratch.js';

/** Plain descriptive statistics over arrays of numbers; each returns NaN for an empty input. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

export function stddev(xs: readonly number[]): number {
  if (xs.length < 2) return xs.length === 1 ? 0 : NaN;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

/** Percentile p in [0, 100] of an ascending array, with linear interpolation between closest ranks. */
function percentileOfSorted(s: ArrayLike<number>, p: number): number {
  if (s.length === 0) return NaN;
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

/** Percentile p in [0, 100] with linear interpolation between closest ranks. */
export function percentile(xs: readonly number[], p: number): number {
  return percentileOfSorted(sortedCopy(xs), p);
}

export const median = (xs: readonly number[]): number => percentile(xs, 50);

/** The median of an ascending array (as median() computes it, without its sort). */
export const medianOfSorted = (s: ArrayLike<number>): number => percentileOfSorted(s, 50);

/** Median absolute deviation from the median. */
export function mad(xs: readonly number[]): number {
  const s = sortedCopy(xs);
  return madOfSorted(s, medianOfSorted(s));
}

/**
 * The median absolute deviation of an ascending array from its median `m`, with no second sort: the deviations
 * of the values below `m` and of those from `m` up are each in order already, and are merged outward from `m`
 * only as far as their middle. The same value as sorting every |x − m| (each deviation is the same subtraction).
 */
export function madOfSorted(s: ArrayLike<number>, m: number): number {
  const n = s.length;
  if (n === 0) return NaN;
  let up = 0;
  while (up < n && s[up] < m) up++;
  let down = up - 1;
  const rank = 0.5 * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  let atLo = NaN;
  for (let k = 0; k <= hi; k++) {
    let d: number;
    if (down < 0 || (up < n && s[up] - m <= m - s[down])) d = s[up++] - m;
    else d = m - s[down--];
    if (k === lo) atLo = d;
    if (k === hi) return atLo + (d - atLo) * (rank - lo);
  }
  return NaN;
}

/** Standard normal cumulative distribution (Abramowitz-Stegun 7.1.26 erf, error < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

export interface Summary {
  n: number;
  mean: number;
  median: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
  stddev: number;
}

export function summarize(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    mean: mean(xs),
    median: median(xs),
    p95: percentile(xs, 95),
    p99: percentile(xs, 99),
    min: xs.length ? Math.min(...xs) : NaN,
    max: xs.length ? Math.max(...xs) : NaN,
    stddev: stddev(xs),
  };
}
