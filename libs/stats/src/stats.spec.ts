import { type AlertState, evaluateAlert } from './alert-tracker.js';
import { detectAnomalies } from './anomaly.js';
import { mad, mean, median, normalCdf, percentile, stddev } from './descriptive.js';
import { mannWhitneyGreater, type StepOptions, stepChange } from './regression.js';
import { classifyTrend, leastSquares, mannKendall, theilSen } from './trend.js';

/** A seeded generator (mulberry32) with normal deviates (Box-Muller): the same series every run. */
function rng(seed: number) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { uniform, normal: (mu: number, sigma: number) => mu + sigma * Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()) };
}

const latency = { improvementDirection: 'decreasing' as const };
const thresholds = { warning: 1.1, critical: 1.3 };
const step: StepOptions = { baselineWindow: 40, recentWindow: 10, significance: 0.001, ...latency };
const trendOpts = { minimumDataPoints: 10, confidenceThreshold: 0.95, stableThreshold: 0.05, ...latency };
const anomalyOpts = { zScoreThreshold: 3, robustThreshold: 3.5, movingAverage: { windowSize: 5, thresholdFactor: 3 }, window: 50 };

/** Feeds a series one value at a time, as the analyzer sees it, and returns the alert events with their index. */
function replay(values: number[], t = thresholds, o = step) {
  let state: AlertState = { streak: 0 };
  const events: Array<{ at: number; event: string }> = [];
  for (let i = 1; i <= values.length; i++) {
    const r = evaluateAlert(values.slice(Math.max(0, i - 200), i), state, t, o);
    state = r.state;
    if (r.event) events.push({ at: i - 1, event: r.event });
  }
  return events;
}

describe('descriptive statistics', () => {
  const xs = [3, 1, 4, 1, 5, 9, 2, 6];
  it.each([
    ['mean', mean(xs), 3.875],
    ['median', median(xs), 3.5],
    ['p25', percentile(xs, 25), 1.75],
    ['p100', percentile(xs, 100), 9],
    ['stddev', stddev([2, 4, 4, 4, 5, 5, 7, 9]), 2.138],
    ['mad', mad(xs), 2],
    ['Φ(0)', normalCdf(0), 0.5],
    ['Φ(1.96)', normalCdf(1.96), 0.975],
  ])('%s', (_name, value, expected) => expect(value).toBeCloseTo(expected, 3));

  it('is NaN on nothing', () => expect([mean([]), median([]), stddev([])].every(Number.isNaN)).toBe(true));
});

describe('trend tests', () => {
  it('least squares fits a line and says how well', () => {
    expect(leastSquares([1, 3, 5, 7])).toEqual({ slope: 2, intercept: 1, r2: 1 });
  });

  it('Theil-Sen ignores an outlier that drags least squares', () => {
    const ys = [10, 11, 12, 13, 14, 15, 16, 17, 18, 500];
    expect(theilSen(ys).slope).toBeCloseTo(1);
    expect(leastSquares(ys).slope).toBeGreaterThan(20);
  });

  it('Mann-Kendall finds a monotone series significant and a flat one not', () => {
    expect(mannKendall([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).p).toBeLessThan(0.001);
    expect(mannKendall([5, 5, 5, 5, 5]).p).toBe(1);
  });

  it('classifies a slow drift up in latency as a degrading trend', () => {
    const r = rng(7);
    const drift = Array.from({ length: 100 }, (_, i) => r.normal(100 + 0.3 * i, 3));
    expect(classifyTrend(drift, trendOpts)).toMatchObject({ direction: 'increasing', classification: 'degrading' });
    const down = Array.from({ length: 100 }, (_, i) => r.normal(130 - 0.3 * i, 3));
    expect(classifyTrend(down, trendOpts)).toMatchObject({ direction: 'decreasing', classification: 'improving' });
  });

  it('improvement_direction turns a drop in throughput into degrading', () => {
    const r = rng(11);
    const falling = Array.from({ length: 80 }, (_, i) => r.normal(500 - 2 * i, 10));
    expect(classifyTrend(falling, { ...trendOpts, improvementDirection: 'increasing' })).toMatchObject({
      direction: 'decreasing',
      classification: 'degrading',
    });
  });

  it('calls stationary noise stable, but for the false positives its confidence allows', () => {
    const r = rng(3);
    const strict = { ...trendOpts, confidenceThreshold: 0.99 };
    const stable = Array.from({ length: 200 }, () =>
      classifyTrend(
        Array.from({ length: 60 }, () => r.normal(100, 10)),
        strict,
      ),
    );
    expect(stable.filter((t) => t.classification !== 'stable').length).toBeLessThanOrEqual(2);
  });
});

describe('anomalies', () => {
  it('a single spike is an anomaly by every method, not a trend and not a regression', () => {
    const r = rng(5);
    const series = Array.from({ length: 80 }, () => r.normal(100, 5));
    series[60] = 400;
    const found = detectAnomalies(series, 60, anomalyOpts);
    expect(found.map((a) => a.method).sort()).toEqual(['moving_average', 'robust_mad', 'z_score']);
    const z = found.find((a) => a.method === 'z_score');
    expect(z?.severity).toBe('high');
    expect(z?.deviationPercent).toBeGreaterThan(250);
    expect(z?.expected[0]).toBeLessThan(100);
    expect(z?.expected[1]).toBeGreaterThan(100);
    expect(classifyTrend(series, trendOpts).classification).toBe('stable');
    expect(replay(series)).toEqual([]);
  });

  it('leaves ordinary values alone', () => {
    const r = rng(9);
    const series = Array.from({ length: 300 }, () => r.normal(100, 5));
    const flagged = series.map((_, i) => detectAnomalies(series, i, anomalyOpts).length).filter((n) => n > 0).length;
    expect(flagged / series.length).toBeLessThan(0.03);
  });
});

describe('regression alerts', () => {
  it('stationary noise over 200 series raises an alert in at most 1% of them', () => {
    const r = rng(42);
    let alerted = 0;
    for (let s = 0; s < 200; s++) {
      const series = Array.from({ length: 150 }, () => r.normal(100, 10));
      if (replay(series).some((e) => e.event === 'raised')) alerted++;
    }
    expect(alerted).toBeLessThanOrEqual(2);
  });

  it('detects a 20% step regression within 20 samples, once, in every one of 50 series', () => {
    const r = rng(1234);
    for (let s = 0; s < 50; s++) {
      const series = Array.from({ length: 160 }, (_, i) => r.normal(i < 100 ? 100 : 120, 5));
      const raised = replay(series).filter((e) => e.event === 'raised');
      expect(raised).toHaveLength(1);
      expect(raised[0]?.at).toBeGreaterThanOrEqual(100);
      expect(raised[0]?.at).toBeLessThan(120);
    }
  });

  it('escalates once when it gets worse, and clears when it recovers', () => {
    const r = rng(77);
    const series = Array.from({ length: 200 }, (_, i) => r.normal(i < 80 ? 100 : i < 120 ? 120 : i < 160 ? 150 : 100, 3));
    expect(replay(series).map((e) => e.event)).toEqual(['raised', 'escalated', 'cleared']);
  });

  it('uses the metric’s direction: a 30% throughput drop is a regression, a rise is not', () => {
    const r = rng(99);
    const tp = { ...step, improvementDirection: 'increasing' as const };
    const drop = Array.from({ length: 120 }, (_, i) => r.normal(i < 80 ? 500 : 350, 10));
    const rise = Array.from({ length: 120 }, (_, i) => r.normal(i < 80 ? 500 : 700, 10));
    expect(replay(drop, { warning: 0.9, critical: 0.5 }, tp).map((e) => e.event)).toEqual(['raised']);
    expect(replay(rise, { warning: 0.9, critical: 0.5 }, tp)).toEqual([]);
  });

  it('needs significance, not only a ratio: two noisy values do not make a regression', () => {
    expect(stepChange([100, 100, 100, 100, 150, 150], thresholds, { ...step, recentWindow: 2 })?.severity).toBeNull();
    expect(mannWhitneyGreater([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p).toBeLessThan(0.01);
  });
});
