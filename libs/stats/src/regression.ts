import { median, normalCdf } from './descriptive.js';
import type { Direction } from './trend.js';

/** Mann-Whitney U test of "b tends to be larger than a": one-sided p-value, normal approximation with tie correction. */
export function mannWhitneyGreater(a: readonly number[], b: readonly number[]): { u: number; z: number; p: number } {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return { u: 0, z: 0, p: 1 };
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) => x.v - y.v);
  const ranks = new Array<number>(all.length);
  let tieTerm = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && (all[j + 1] as { v: number }).v === (all[i] as { v: number }).v) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[k] = r;
    const t = j - i + 1;
    tieTerm += t ** 3 - t;
    i = j + 1;
  }
  let rb = 0;
  all.forEach((x, i) => {
    if (x.g === 1) rb += ranks[i];
  });
  const u = rb - (n2 * (n2 + 1)) / 2;
  const n = n1 + n2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  if (sigma === 0) return { u, z: 0, p: 1 };
  const z = (u - (n1 * n2) / 2 - 0.5) / sigma;
  return { u, z, p: 1 - normalCdf(z) };
}

export interface Thresholds {
  /** Ratio recent/baseline at which a regression is a warning (e.g. 1.5 for latency, 0.75 for throughput). */
  warning: number;
  critical: number;
}

export interface StepChange {
  baselineMedian: number;
  recentMedian: number;
  ratio: number;
  /** One-sided p-value that the recent window is worse than the baseline. */
  p: number;
  severity: 'warning' | 'critical' | null;
}

export interface StepOptions {
  baselineWindow: number;
  recentWindow: number;
  significance: number;
  improvementDirection: Direction;
}

/**
 * Compares the last `recentWindow` values with the `baselineWindow` before them. A regression needs
 * both: the medians' ratio past a threshold in the worse direction, and a Mann-Whitney test significant
 * at `significance`. Null when there is not a full recent window and at least as many baseline values.
 */
export function stepChange(values: readonly number[], t: Thresholds, o: StepOptions): StepChange | null {
  if (values.length < 2 * o.recentWindow) return null;
  const recent = values.slice(-o.recentWindow);
  const baseline = values.slice(Math.max(0, values.length - o.recentWindow - o.baselineWindow), values.length - o.recentWindow);
  return compareWindows(baseline, recent, t, o);
}

export function compareWindows(
  baseline: readonly number[],
  recent: readonly number[],
  t: Thresholds,
  o: Pick<StepOptions, 'significance' | 'improvementDirection'>,
): StepChange {
  const baselineMedian = median(baseline);
  const recentMedian = median(recent);
  const ratio = baselineMedian === 0 ? (recentMedian === 0 ? 1 : Infinity) : recentMedian / baselineMedian;
  const worseIsUp = o.improvementDirection === 'decreasing';
  const { p } = worseIsUp ? mannWhitneyGreater(baseline, recent) : mannWhitneyGreater(recent, baseline);
  const past = (limit: number) => (worseIsUp ? ratio >= limit : ratio <= limit);
  const severity = p < o.significance ? (past(t.critical) ? 'critical' : past(t.warning) ? 'warning' : null) : null;
  return { baselineMedian, recentMedian, ratio, p, severity };
}
