import { madOfSorted, medianOfSorted } from './descriptive.js';
import { type SlidingSorted, sortedCopy } from './scratch.js';

export type AnomalyMethod = 'z_score' | 'robust_mad' | 'moving_average';
export type Severity = 'low' | 'medium' | 'high';

export interface Anomaly {
  index: number;
  value: number;
  method: AnomalyMethod;
  /** The range the value was expected in. */
  expected: [number, number];
  /** How far outside the expected centre, in percent of it. */
  deviationPercent: number;
  /** How many thresholds away: low up to 1.5×, medium up to 3×, high beyond. */
  severity: Severity;
  score: number;
}

export interface AnomalyOptions {
  zScoreThreshold: number;
  /** Modified z-score (0.6745·|x − median| / MAD) above which a value is an outlier; 3.5 by Iglewicz and Hoaglin. */
  robustThreshold: number;
  movingAverage?: { windowSize: number; thresholdFactor: number };
  /** How many preceding values each check compares against. */
  window: number;
}

/** The mean of xs[from, to), summed in order as mean() sums. */
function meanOf(xs: readonly number[], from: number, to: number): number {
  let sum = 0;
  for (let k = from; k < to; k++) sum += xs[k];
  return sum / (to - from);
}

const severityOf = (score: number, threshold: number): Severity => (score > 3 * threshold ? 'high' : score > 1.5 * threshold ? 'medium' : 'low');
const deviation = (value: number, centre: number) => (centre === 0 ? 0 : (100 * (value - centre)) / Math.abs(centre));

/**
 * Checks the value at `index` against the `window` values before it, by every enabled method, and
 * returns one anomaly per method that flags it. Needs at least 8 earlier values. A scan that checks one index
 * after another of the same array passes a `sorted` window of its own, which then moves along with it.
 */
export function detectAnomalies(values: readonly number[], index: number, o: AnomalyOptions, sorted?: SlidingSorted): Anomaly[] {
  const x = values[index];
  // The values before it are values[from, index): read in place (no copy per check), summed in the order
  // mean() and stddev() sum them, so the figures are theirs to the last bit.
  const from = Math.max(0, index - o.window);
  const n = index - from;
  if (n < 8) return [];
  const out: Anomaly[] = [];
  const m = meanOf(values, from, index);
  let squares = 0;
  for (let k = from; k < index; k++) squares += (values[k] - m) ** 2;
  const sd = Math.sqrt(squares / (n - 1));
  if (sd > 0) {
    const z = Math.abs(x - m) / sd;
    if (z > o.zScoreThreshold) {
      out.push({
        index,
        value: x,
        method: 'z_score',
        expected: [m - o.zScoreThreshold * sd, m + o.zScoreThreshold * sd],
        deviationPercent: deviation(x, m),
        severity: severityOf(z, o.zScoreThreshold),
        score: z,
      });
    }
  }
  // One sorted window gives both the median and the MAD (see madOfSorted): this runs for every new sample of
  // every series.
  const ordered = sorted ? sorted.of(values, from, index) : sortedCopy(values, from, index);
  const med = medianOfSorted(ordered);
  const spread = madOfSorted(ordered, med);
  if (spread > 0) {
    const score = (0.6745 * Math.abs(x - med)) / spread;
    if (score > o.robustThreshold) {
      const half = (o.robustThreshold * spread) / 0.6745;
      out.push({
        index,
        value: x,
        method: 'robust_mad',
        expected: [med - half, med + half],
        deviationPercent: deviation(x, med),
        severity: severityOf(score, o.robustThreshold),
        score,
      });
    }
  }
  if (o.movingAverage && n >= o.movingAverage.windowSize && sd > 0) {
    const ma = meanOf(values, index - o.movingAverage.windowSize, index);
    const score = Math.abs(x - ma) / sd;
    if (score > o.movingAverage.thresholdFactor) {
      const half = o.movingAverage.thresholdFactor * sd;
      out.push({
        index,
        value: x,
        method: 'moving_average',
        expected: [ma - half, ma + half],
        deviationPercent: deviation(x, ma),
        severity: severityOf(score, o.movingAverage.thresholdFactor),
        score,
      });
    }
  }
  return out;
}
