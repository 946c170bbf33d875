import { median, normalCdf } from './descriptive.js';

export interface LineFit {
  slope: number;
  intercept: number;
  /** Share of the variance the line explains (0..1): the least-squares fit's confidence measure. */
  r2: number;
}

export function leastSquares(ys: readonly number[]): LineFit {
  const n = ys.length;
  if (n < 2) return { slope: 0, intercept: ys[0] ?? NaN, r2: 0 };
  const mx = (n - 1) / 2;
  let my = 0;
  for (const y of ys) my += y;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  ys.forEach((y, x) => {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
    syy += (y - my) ** 2;
  });
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx, r2: syy === 0 ? 0 : (sxy * sxy) / (sxx * syy) };
}

/** Median of all pairwise slopes: a slope that up to ~29% of outliers cannot move. */
export function theilSen(ys: readonly number[]): { slope: number; intercept: number } {
  const slopes: number[] = [];
  for (let i = 0; i < ys.length; i++) for (let j = i + 1; j < ys.length; j++) slopes.push((ys[j] - ys[i]) / (j - i));
  const slope = slopes.length ? median(slopes) : 0;
  const intercept = median(ys.map((y, x) => y - slope * x));
  return { slope, intercept };
}

/** Mann-Kendall trend test: S, its normal score (tie-corrected variance) and the two-sided p-value. */
export function mannKendall(ys: readonly number[]): { s: number; z: number; p: number } {
  const n = ys.length;
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) s += Math.sign(ys[j] - ys[i]);
  const ties = new Map<number, number>();
  for (const y of ys) ties.set(y, (ties.get(y) ?? 0) + 1);
  let tieTerm = 0;
  for (const t of ties.values()) tieTerm += t * (t - 1) * (2 * t + 5);
  const variance = (n * (n - 1) * (2 * n + 5) - tieTerm) / 18;
  if (variance <= 0) return { s, z: 0, p: 1 };
  const z = s > 0 ? (s - 1) / Math.sqrt(variance) : s < 0 ? (s + 1) / Math.sqrt(variance) : 0;
  return { s, z, p: 2 * (1 - normalCdf(Math.abs(z))) };
}

export type Direction = 'increasing' | 'decreasing';
export type TrendClass = 'improving' | 'degrading' | 'stable';

export interface Trend {
  classification: TrendClass;
  direction: Direction | 'flat';
  /** Theil-Sen change across the series, relative to its median. */
  relativeChange: number;
  /** 1 − Mann-Kendall p-value. */
  confidence: number;
  leastSquares: LineFit;
  theilSen: { slope: number; intercept: number };
  n: number;
}

export interface TrendOptions {
  minimumDataPoints: number;
  /** Minimum Mann-Kendall confidence (1 − p) for a trend. */
  confidenceThreshold: number;
  /** Relative change across the series below which it is stable. */
  stableThreshold: number;
  /** Which way is better for this metric. */
  improvementDirection: Direction;
}

/**
 * Classifies a series: a trend needs enough points, a rank-based (Mann-Kendall) confidence above the
 * threshold, and a Theil-Sen change across the series beyond `stableThreshold` of its median. Both are
 * rank-based, so one spike does not make a trend. Direction and `improvementDirection` give the class.
 */
export function classifyTrend(ys: readonly number[], o: TrendOptions): Trend {
  const ls = leastSquares(ys);
  const ts = theilSen(ys);
  const mk = mannKendall(ys);
  const m = median(ys);
  const relativeChange = m === 0 || ys.length < 2 ? 0 : (ts.slope * (ys.length - 1)) / Math.abs(m);
  const confidence = 1 - mk.p;
  const base = { relativeChange, confidence, leastSquares: ls, theilSen: ts, n: ys.length };
  if (ys.length < o.minimumDataPoints || confidence < o.confidenceThreshold || Math.abs(relativeChange) < o.stableThreshold) {
    return { ...base, classification: 'stable', direction: 'flat' };
  }
  const direction: Direction = relativeChange > 0 ? 'increasing' : 'decreasing';
  return { ...base, direction, classification: direction === o.improvementDirection ? 'improving' : 'degrading' };
}
