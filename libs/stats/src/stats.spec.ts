import { detectAnomalies } from './anomaly.js';
import {
  bestSplit,
  changePoints,
  seededRandom,
  type DetectorOptions,
  detectStep,
  locateStep,
  pettitt,
  ratioInterval,
  type StepState,
  trendAdjustedRatio,
} from './change-point.js';
import { mad, mean, median, normalCdf, percentile, stddev } from './descriptive.js';
import { mannWhitneyGreater, mannWhitneyOfSorted } from './regression.js';
import { SlidingSorted } from './scratch.js';
import { classifyTrend, leastSquares, mannKendall, theilSen } from './trend.js';

/** A seeded generator (mulberry32) with normal deviates (Box-Muller): the same series every run. */
function rng(seed: number) {
  const uniform = seededRandom(seed);
  return { uniform, normal: (mu: number, sigma: number) => mu + sigma * Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()) };
}

const latency = { improvementDirection: 'decreasing' as const };
const thresholds = { warning: 1.1, critical: 1.3 };
const step: DetectorOptions = { baselineWindow: 30, recentWindow: 10, minAfter: 5, significance: 0.0001, confirmations: 3, ...latency };
const trendOpts = { minimumDataPoints: 10, confidenceThreshold: 0.95, stableThreshold: 0.05, ...latency };
const anomalyOpts = { zScoreThreshold: 3, robustThreshold: 3.5, movingAverage: { windowSize: 5, thresholdFactor: 3 }, window: 50 };

/** Feeds a series one value at a time, as the analyzer sees it; the alert events, when each came and where its change began. */
function replay(values: number[], t = thresholds, o = step) {
  let state: StepState = {};
  const events: Array<{ at: number; event: string; change?: number }> = [];
  for (let i = 1; i <= values.length; i++) {
    const r = detectStep(values.slice(0, i), state, t, o);
    state = r.state;
    if (r.event) events.push({ at: i - 1, event: r.event, ...(r.change && { change: r.change.index }) });
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

  it('is NaN on nothing', () => expect([mean([]), median([]), stddev([]), mad([])].every(Number.isNaN)).toBe(true));

  // The textbook definitions, computed the slow way (a sort per median, objects for ranks): the fast ones must
  // give exactly the same numbers, ties and even counts included.
  const slowMedian = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    const rank = 0.5 * (s.length - 1);
    return s[Math.floor(rank)] + (s[Math.ceil(rank)] - s[Math.floor(rank)]) * (rank - Math.floor(rank));
  };
  const slowMad = (v: number[]) => slowMedian(v.map((x) => Math.abs(x - slowMedian(v))));
  function slowMannWhitney(a: number[], b: number[]) {
    const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) => x.v - y.v);
    let rb = 0;
    let tie = 0;
    for (let i = 0; i < all.length;) {
      let j = i;
      while (j + 1 < all.length && all[j + 1].v === all[i].v) j++;
      for (let k = i; k <= j; k++) if (all[k].g === 1) rb += (i + j) / 2 + 1;
      tie += (j - i + 1) ** 3 - (j - i + 1);
      i = j + 1;
    }
    return { u: rb - (b.length * (b.length + 1)) / 2, tie };
  }

  it('an anomaly check scores a value exactly as mean, stddev, median and MAD of the window before it do', () => {
    const r = rng(11);
    const values = Array.from({ length: 400 }, (_, i) => (i % 37 === 0 ? 160 : Math.round(r.normal(100, 5))));
    let flagged = 0;
    const sorted = new SlidingSorted();
    for (let i = 0; i < values.length; i++) {
      const before = values.slice(Math.max(0, i - anomalyOpts.window), i);
      const anomalies = detectAnomalies(values, i, anomalyOpts);
      // A scan with its own sorted window finds exactly the same.
      expect(detectAnomalies(values, i, anomalyOpts, sorted)).toEqual(anomalies);
      const found = new Map(anomalies.map((a) => [a.method, a.score]));
      flagged += found.size;
      if (before.length < 8) {
        expect(found.size).toBe(0);
        continue;
      }
      const x = values[i];
      const z = Math.abs(x - mean(before)) / stddev(before);
      const robust = (0.6745 * Math.abs(x - median(before))) / mad(before);
      const moving = Math.abs(x - mean(before.slice(-anomalyOpts.movingAverage.windowSize))) / stddev(before);
      expect(found.get('z_score')).toBe(z > anomalyOpts.zScoreThreshold ? z : undefined);
      expect(found.get('robust_mad')).toBe(robust > anomalyOpts.robustThreshold ? robust : undefined);
      expect(found.get('moving_average')).toBe(moving > anomalyOpts.movingAverage.thresholdFactor ? moving : undefined);
    }
    expect(flagged).toBeGreaterThan(20);
  });

  it('a sliding sorted window holds what a sort of the window gives, zeros, NaN and moves of any size included', () => {
    const r = rng(5);
    const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((v, k) => Object.is(v, b[k]));
    const sorted = new SlidingSorted();
    let checked = 0;
    for (let series = 0; series < 40; series++) {
      const special = [0, -0, NaN];
      const values = Array.from({ length: 300 }, () =>
        series % 4 === 0 && r.uniform() < 0.05 ? special[Math.floor(r.uniform() * 3)] : Math.round(r.normal(100, 4)),
      );
      let from = 0;
      let to = 0;
      while (to < values.length) {
        // Mostly a step of one (a scan), sometimes a jump past what is moved value by value.
        const step = r.uniform() < 0.9 ? 1 : 1 + Math.floor(r.uniform() * 8);
        to = Math.min(values.length, to + step);
        from = Math.max(from, to - 50);
        expect(same(sorted.of(values, from, to), Float64Array.from(values.slice(from, to)).sort())).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(5000);
  });

  it('Mann-Whitney of a part split in two, given the part sorted, equals the test of its two sides, bit for bit', () => {
    const r = rng(9);
    for (let trial = 0; trial < 500; trial++) {
      const n = 2 + (trial % 45);
      // Halves and whole numbers: many ties; sometimes every value the same, sometimes zeros of both signs.
      const values = Array.from({ length: n + 10 }, (_, k) =>
        trial % 13 === 0 ? 5 : trial % 17 === 0 && k % 5 === 0 ? (k % 2 ? -0 : 0) : Math.round(r.normal(100, 3) * 2) / 2,
      );
      const from = trial % 10;
      const to = from + n;
      const cut = from + 1 + Math.floor(r.uniform() * (n - 1));
      const sorted = Float64Array.from(values.slice(from, to)).sort();
      const before = values.slice(from, cut);
      const after = values.slice(cut, to);
      expect(mannWhitneyOfSorted(sorted, n, values, cut, to, true)).toEqual(mannWhitneyGreater(before, after));
      expect(mannWhitneyOfSorted(sorted, n, values, cut, to, false)).toEqual(mannWhitneyGreater(after, before));
    }
  });

  it('Mann-Whitney ends on a sample holding NaN (a value read back wrong must not hang the analysis)', () => {
    expect(mannWhitneyGreater([1, NaN, 3], [NaN, 5]).u).toEqual(expect.any(Number));
  });

  it('MAD and Mann-Whitney give what their definitions give, on samples with ties, odd and even sizes', () => {
    const r = rng(7);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + (trial % 23);
      // Rounded: many ties; sometimes every value the same.
      const v = Array.from({ length: n }, () => (trial % 11 === 0 ? 5 : Math.round(r.normal(100, 3) * 2) / 2));
      expect(mad(v)).toBe(slowMad(v));
      const w = Array.from({ length: 1 + (trial % 7) }, () => Math.round(r.normal(101, 3)));
      const slow = slowMannWhitney(v, w);
      const fast = mannWhitneyGreater(v, w);
      expect(fast.u).toBe(slow.u);
      const n1 = v.length;
      const n2 = w.length;
      const sigma = Math.sqrt(((n1 * n2) / 12) * (n1 + n2 + 1 - slow.tie / ((n1 + n2) * (n1 + n2 - 1))));
      expect(fast.p).toBe(sigma === 0 ? 1 : 1 - normalCdf((slow.u - (n1 * n2) / 2 - 0.5) / sigma));
    }
  });
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

describe('change points', () => {
  it('Pettitt locates a clean step within 2 samples, in each of 50 seeded series', () => {
    const r = rng(11);
    for (let s = 0; s < 50; s++) {
      const at = 20 + (s % 40);
      const series = Array.from({ length: 80 }, (_, i) => r.normal(i < at ? 100 : 115, 3));
      const found = pettitt(series);
      expect(Math.abs((found?.index ?? -99) - at)).toBeLessThanOrEqual(2);
      expect(found?.p).toBeLessThan(0.001);
    }
  });

  it('the L1 split locates a step late in a window (unbalanced sides) within 2 samples, mostly exactly, in 50 seeded series', () => {
    const r = rng(13);
    let exact = 0;
    for (let s = 0; s < 50; s++) {
      const at = 30 + (s % 5);
      const series = Array.from({ length: 40 }, (_, i) => r.normal(i < at ? 100 : 115, 3));
      const found = bestSplit(series, 25, 5);
      expect(Math.abs((found ?? -99) - at)).toBeLessThanOrEqual(2);
      if (found === at) exact++;
    }
    expect(exact).toBeGreaterThanOrEqual(45);
    expect(bestSplit([1, 2, 3], 2, 2)).toBeNull();
  });

  it('binary segmentation finds every step of a series, and none in noise', () => {
    const r = rng(21);
    const series = Array.from({ length: 200 }, (_, i) => r.normal(i < 60 ? 100 : i < 130 ? 140 : 90, 4));
    const found = changePoints(series);
    expect(found).toHaveLength(2);
    expect(Math.abs(found[0] - 60)).toBeLessThanOrEqual(2);
    expect(Math.abs(found[1] - 130)).toBeLessThanOrEqual(2);
    expect(changePoints(Array.from({ length: 200 }, () => r.normal(100, 4)))).toEqual([]);
  });

  it('a steady drift projects its own continuation: measured against it, it is no step; a step with a drift is', () => {
    const r = rng(31);
    const drift = Array.from({ length: 40 }, (_, i) => r.normal(100 + i * 0.8, 1));
    expect(trendAdjustedRatio(drift, 32)).toBeCloseTo(1, 1);
    const stepOnDrift = Array.from({ length: 40 }, (_, i) => r.normal((100 + i * 0.8) * (i < 32 ? 1 : 1.3), 1));
    expect(trendAdjustedRatio(stepOnDrift, 32)).toBeGreaterThan(1.25);
  });

  it('sizes a step with a bootstrap interval around it', () => {
    const r = rng(41);
    const before = Array.from({ length: 30 }, () => r.normal(100, 3));
    const after = Array.from({ length: 10 }, () => r.normal(125, 3));
    const ci = ratioInterval(before, after);
    expect(ci.ratio).toBeCloseTo(1.25, 1);
    expect(ci.low).toBeLessThan(ci.ratio);
    expect(ci.high).toBeGreaterThan(ci.ratio);
    expect(ci.high - ci.low).toBeLessThan(0.1);
  });
});

describe('regression alerts', () => {
  it('the detector on a part of a series read in place decides exactly as on a copy of that part', () => {
    const r = rng(77);
    let events = 0;
    const differences: string[] = [];
    for (const direction of ['decreasing', 'increasing'] as const) {
      const o = { ...step, improvementDirection: direction };
      for (let s = 0; s < 3; s++) {
        const level = (i: number) => (i < 60 ? 100 : i < 120 ? (direction === 'decreasing' ? 130 : 70) : 100);
        const values = Array.from({ length: 180 }, (_, i) => Math.round(r.normal(level(i), 3)));
        let state: StepState = {};
        for (let i = 0; i < values.length; i++) {
          const lo = Math.max(0, i + 1 - (s % 2 ? 40 : 55));
          const part = values.slice(lo, i + 1);
          const inPlace = detectStep(values, state, thresholds, o, lo, i + 1);
          // (Compared as JSON: a matcher's deep equality per sample would take seconds here.)
          const seen = JSON.stringify([inPlace, locateStep(values, thresholds, o, lo, i + 1), bestSplit(values, 30, 5, lo, i + 1)]);
          const copied = JSON.stringify([detectStep(part, state, thresholds, o), locateStep(part, thresholds, o), bestSplit(part, 30, 5)]);
          if (seen !== copied) differences.push(`${direction} series ${s} sample ${i}: ${seen} against ${copied}`);
          // A raised alert's change point is the located step, bootstrap interval included.
          const located = inPlace.event === 'raised' ? JSON.stringify(locateStep(values, thresholds, o, lo, i + 1)) : undefined;
          if (located !== undefined && JSON.stringify(inPlace.change) !== located) {
            differences.push(`${direction} series ${s} sample ${i}: raised ${JSON.stringify(inPlace.change)} against ${located}`);
          }
          state = inPlace.state;
          if (inPlace.event) events++;
        }
      }
    }
    expect(differences.slice(0, 3)).toEqual([]);
    expect(events).toBeGreaterThan(3);
  });

  it('stationary noise over 200 series raises an alert in at most 1% of them', () => {
    const r = rng(42);
    let alerted = 0;
    for (let s = 0; s < 200; s++) {
      const series = Array.from({ length: 150 }, () => r.normal(100, 10));
      if (replay(series).some((e) => e.event === 'raised')) alerted++;
    }
    expect(alerted).toBeLessThanOrEqual(2);
  });

  it('alerts on a 20% step within 10 samples, once, in every one of 50 series, carrying the step’s first sample (±3 in this noise)', () => {
    const r = rng(1234);
    for (let s = 0; s < 50; s++) {
      const series = Array.from({ length: 160 }, (_, i) => r.normal(i < 100 ? 100 : 120, 3));
      const raised = replay(series).filter((e) => e.event === 'raised');
      expect(raised).toHaveLength(1);
      expect(raised[0]?.at).toBeGreaterThanOrEqual(104);
      expect(raised[0]?.at).toBeLessThan(110);
      expect(Math.abs((raised[0]?.change ?? -99) - 100)).toBeLessThanOrEqual(3);
    }
  });

  it('sees a 10% step past a 5% warning', () => {
    const r = rng(55);
    const series = Array.from({ length: 120 }, (_, i) => r.normal(i < 70 ? 100 : 110, 2));
    expect(
      replay(series, { warning: 1.05, critical: 1.5 })
        .filter((e) => e.event === 'raised')
        .map((e) => e.change),
    ).toEqual([70]);
  });

  it('reports a steady drift as no step, and raises nothing before a full baseline exists', () => {
    const r = rng(66);
    const drift = Array.from({ length: 200 }, (_, i) => r.normal(100 * (1 + (0.4 * i) / 200), 2));
    expect(replay(drift)).toEqual([]);
    expect(classifyTrend(drift, trendOpts).classification).toBe('degrading');
    // A step at sample 20, before the 30-sample baseline is full: nothing to measure it against yet.
    const early = Array.from({ length: 60 }, (_, i) => r.normal(i < 20 ? 100 : 150, 2));
    expect(locateStep(early.slice(0, 28), thresholds, step)).toBeNull();
    expect(replay(early.slice(0, 29))).toEqual([]);
  });

  it('escalates once when it gets worse (the second step then raises its own alert, saying where), and clears when it recovers', () => {
    const r = rng(77);
    const series = Array.from({ length: 200 }, (_, i) => r.normal(i < 80 ? 100 : i < 120 ? 120 : i < 160 ? 150 : 100, 3));
    const events = replay(series);
    expect(events.map((e) => e.event)).toEqual(['raised', 'escalated', 'raised', 'cleared']);
    expect(
      events.filter((e) => e.change !== undefined).map((e) => Math.abs((e.change as number) - (e.event === 'raised' && e.at < 120 ? 80 : 120)) <= 2),
    ).toEqual([true, true]);
  });

  it('a second step on top of the first, once the first is behind the baseline, is a new alert at its own change point', () => {
    const r = rng(88);
    const series = Array.from({ length: 200 }, (_, i) => r.normal(i < 60 ? 100 : i < 130 ? 125 : 160, 3));
    const raised = replay(series, { warning: 1.1, critical: 2 }).filter((e) => e.event === 'raised');
    expect(raised.map((e) => Math.round(((e.change as number) - ((e.change as number) % 10)) / 10))).toEqual([6, 13]);
  });

  it('uses the metric’s direction: a 30% throughput drop is a regression, a rise is not', () => {
    const r = rng(99);
    const tp = { ...step, improvementDirection: 'increasing' as const };
    const drop = Array.from({ length: 120 }, (_, i) => r.normal(i < 80 ? 500 : 350, 10));
    const rise = Array.from({ length: 120 }, (_, i) => r.normal(i < 80 ? 500 : 700, 10));
    expect(replay(drop, { warning: 0.9, critical: 0.5 }, tp).map((e) => e.event)).toEqual(['raised']);
    expect(replay(rise, { warning: 0.9, critical: 0.5 }, tp)).toEqual([]);
  });

  it('needs significance, not only a ratio', () => {
    expect(mannWhitneyGreater([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p).toBeLessThan(0.01);
    const noisy = [
      100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100,
      100, 150, 90, 150, 95, 150,
    ];
    expect(locateStep(noisy, thresholds, step)).toBeNull();
  });
});
