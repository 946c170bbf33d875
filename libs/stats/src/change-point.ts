import { median } from './descriptive.js';
import { mannWhitneyGreaterIn, mannWhitneyOfSorted, type Thresholds } from './regression.js';
import { type Direction, theilSen } from './trend.js';

/** Ranks from 1, ties sharing their average rank. */
function ranks(xs: readonly number[]): number[] {
  const order = xs.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const r = new Array<number>(xs.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && (order[j + 1] as { v: number }).v === (order[i] as { v: number }).v) j++;
    for (let k = i; k <= j; k++) r[(order[k] as { i: number }).i] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/**
 * Pettitt's rank test for one change in level: the split that best separates what came before from what came
 * after (robust to outliers and heavy tails: only ranks count), as the index of the first sample after the
 * change, and an approximate p-value for there being a change at all (Pettitt 1979). Splits are tried from
 * `minBefore` to `n − minAfter` samples.
 */
export function pettitt(xs: readonly number[], minBefore = 1, minAfter = 1): { index: number; statistic: number; p: number } | null {
  const n = xs.length;
  if (n < minBefore + minAfter || n < 2) return null;
  const r = ranks(xs);
  let prefix = 0;
  let best = { index: -1, statistic: -1 };
  for (let k = 1; k < n; k++) {
    prefix += r[k - 1];
    if (k < minBefore || n - k < minAfter) continue;
    const u = Math.abs(2 * prefix - k * (n + 1));
    if (u > best.statistic) best = { index: k, statistic: u };
  }
  if (best.index < 0) return null;
  const p = Math.min(1, 2 * Math.exp((-6 * best.statistic ** 2) / (n ** 3 + n ** 2)));
  return { ...best, p };
}

/**
 * Where one change in level best splits a series: the split (index of the first sample after it, from
 * `minBefore` to `n − minAfter`) that least costs when each side is summarised by its own median, cost being
 * the sum of absolute deviations (the L1 segment cost of PELT and ruptures). Unlike Pettitt's statistic it
 * does not pull the last samples before a change into the side after it when the sides differ in size, and
 * medians keep it robust to outliers and heavy tails.
 */
export function bestSplit(xs: readonly number[], minBefore = 1, minAfter = 1, from = 0, to = xs.length): number | null {
  const n = to - from;
  const lo = Math.max(1, minBefore);
  const hi = n - Math.max(1, minAfter);
  if (lo > hi) return null;
  // Each side's cost for every split, from sides grown one sample at a time and kept sorted (no copy and sort
  // per split): prefix[k] is the cost of xs[from, from + k), suffix[k] that of xs[from + k, to).
  const prefix = sideCosts(xs, from, n, lo, hi, false);
  const suffix = sideCosts(xs, from, n, lo, hi, true);
  let best = lo;
  let bestCost = Infinity;
  for (let k = lo; k <= hi; k++) {
    const c = prefix[k] + suffix[k];
    if (c < bestCost) {
      best = k;
      bestCost = c;
    }
  }
  return best;
}

/**
 * Buffers sideCosts reuses (this runs for every new sample of every series): the costs of each direction, and
 * each direction's sorted side. Typed, so they hold doubles whatever was stored before; grown when a longer part
 * comes. After bestSplit, `sorted` holds the whole part in ascending order (see sortedPart).
 */
const costBuffers = {
  prefix: new Float64Array(64),
  suffix: new Float64Array(64),
  sorted: new Float64Array(64),
  suffixSide: new Float64Array(64),
  /** Whether the part bestSplit last read held a NaN (then `sorted` is in no order). */
  sawNaN: false,
};

/**
 * The part bestSplit last split, in ascending order, or undefined when it held a NaN: its forward pass sorts the
 * whole part on the way (its last few values go in after the last split's cost), so a test on the split that
 * needs the part's order gets it without a sort of its own. Valid until the next bestSplit.
 */
function sortedPart(): Float64Array | undefined {
  return costBuffers.sawNaN ? undefined : costBuffers.sorted;
}

/**
 * The L1 cost (sum of absolute deviations from the median) of the first k values of xs[from, from + n) (or of
 * the values from k on when `fromEnd`) for k in [lo, hi], at out[k]. Valid until the next call for the same
 * direction.
 */
function sideCosts(xs: readonly number[], from: number, n: number, lo: number, hi: number, fromEnd: boolean): Float64Array {
  if (costBuffers.sorted.length < n + 1) {
    const size = Math.max(n + 1, 2 * costBuffers.sorted.length);
    costBuffers.prefix = new Float64Array(size);
    costBuffers.suffix = new Float64Array(size);
    costBuffers.sorted = new Float64Array(size);
    costBuffers.suffixSide = new Float64Array(size);
  }
  const out = fromEnd ? costBuffers.suffix : costBuffers.prefix;
  const side = fromEnd ? costBuffers.suffixSide : costBuffers.sorted;
  let size = 0;
  let sawNaN = false;
  const add = (v: number) => {
    let at = size++;
    while (at > 0 && side[at - 1] > v) {
      side[at] = side[at - 1];
      at--;
    }
    side[at] = v;
  };
  const cost = () => {
    const m = size % 2 ? side[(size - 1) / 2] : (side[size / 2 - 1] + side[size / 2]) / 2;
    let sum = 0;
    for (let i = 0; i < size; i++) sum += Math.abs(side[i] - m);
    return sum;
  };
  if (fromEnd) {
    for (let k = n - 1; k >= lo; k--) {
      add(xs[from + k]);
      if (k <= hi) out[k] = cost();
    }
  } else {
    for (let k = 1; k <= n; k++) {
      const v = xs[from + k - 1];
      // (Only this direction's order is kept, see sortedPart.)
      if (v !== v) sawNaN = true;
      add(v);
      if (k >= lo && k <= hi) out[k] = cost();
    }
    costBuffers.sawNaN = sawNaN;
  }
  return out;
}

/**
 * Every change point of a series (the index of the first sample after each change), offline: binary
 * segmentation with Pettitt's test as the split, a split kept when significant at `alpha` and both sides hold
 * at least `minSize` samples (the penalty against splitting noise), placed where the L1 cost is least.
 */
export function changePoints(xs: readonly number[], o: { alpha?: number; minSize?: number } = {}): number[] {
  const alpha = o.alpha ?? 0.001;
  const minSize = o.minSize ?? 5;
  const found: number[] = [];
  const split = (lo: number, hi: number) => {
    if (hi - lo < 2 * minSize) return;
    const segment = xs.slice(lo, hi);
    const t = pettitt(segment, minSize, minSize);
    const k = t && t.p < alpha ? bestSplit(segment, minSize, minSize) : null;
    if (k === null) return;
    found.push(lo + k);
    split(lo, lo + k);
    split(lo + k, hi);
  };
  split(0, xs.length);
  return found.sort((a, b) => a - b);
}

/**
 * The step at `k` measured against where the samples before it were heading: the median after the change
 * divided by the median of what the line through the samples before it (Theil-Sen, robust to outliers)
 * projects for those same samples. A steady drift projects its own continuation, so its ratio stays near 1:
 * a trend is not a step, whatever split a test finds in it. A step, with or without a drift, keeps its size.
 */
export function trendAdjustedRatio(xs: readonly number[], k: number): number {
  const line = theilSen(xs.slice(0, k));
  const projected = median(xs.slice(k).map((_, j) => line.intercept + line.slope * (k + j)));
  return projected <= 0 ? Infinity : median(xs.slice(k)) / projected;
}

/** A small seeded generator (mulberry32): the same samples give the same interval. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The ratio of medians (after ÷ before) with a bootstrap percentile interval. */
export function ratioInterval(
  before: readonly number[],
  after: readonly number[],
  confidence = 0.95,
  resamples = 400,
  seed = 1,
): { ratio: number; low: number; high: number } {
  const ratio = median(after) / median(before);
  const rnd = seededRandom(seed);
  const draw = (xs: readonly number[]) => median(Array.from({ length: xs.length }, () => xs[Math.floor(rnd() * xs.length)]));
  const ratios = Array.from({ length: resamples }, () => draw(after) / draw(before)).sort((a, b) => a - b);
  const at = (q: number) => ratios[Math.min(ratios.length - 1, Math.max(0, Math.round(q * (ratios.length - 1))))];
  return { ratio, low: at((1 - confidence) / 2), high: at(1 - (1 - confidence) / 2) };
}

export interface DetectorOptions {
  /** Samples a change point needs before it (a full baseline), and the most the test looks back over them. */
  baselineWindow: number;
  /** How far back a new change may lie: only changes in the last `recentWindow` samples are new. */
  recentWindow: number;
  /** Samples after a change before it can be told (the least delay of an alert). */
  minAfter: number;
  /** One-sided Mann-Whitney level the step must reach (before against after, in the worse direction). */
  significance: number;
  /** Samples in a row that must find the same change point (within 2) before the alert is raised. */
  confirmations: number;
  improvementDirection: Direction;
}

/** Where a series changed, as an alert carries it. */
export interface ChangePoint {
  /** Index in the series of the first sample after the change. */
  index: number;
  before: number;
  after: number;
  baselineMedian: number;
  recentMedian: number;
  /** Recent ÷ baseline median, with a 95% bootstrap interval. */
  ratio: number;
  ratioLow: number;
  ratioHigh: number;
  p: number;
  severity: 'warning' | 'critical' | null;
}

/**
 * The most recent step in the worse direction, located, sized and tested; null when there is none to report. The
 * series is values[from, to) (all of values by default), and the index returned counts from `from`.
 */
export function locateStep(values: readonly number[], t: Thresholds, o: DetectorOptions, from = 0, to = values.length): ChangePoint | null {
  const change = locate(values, t, o, from, to);
  return change && withInterval(values, from, to, change);
}

/** locateStep without the ratio's interval (NaN): its 400 resamples are paid only for a step that raises an alert. */
function locate(values: readonly number[], t: Thresholds, o: DetectorOptions, from: number, to: number): ChangePoint | null {
  const n = to - from;
  const start = Math.max(0, n - (o.baselineWindow + o.recentWindow));
  const wFrom = from + start;
  const size = to - wFrom;
  // A change must lie in the recent window, with a full baseline before it and `minAfter` samples after it.
  const minBefore = Math.max(size - o.recentWindow, o.baselineWindow - start);
  if (minBefore < 1 || size - minBefore < o.minAfter) return null;
  const k = bestSplit(values, minBefore, o.minAfter, wFrom, to);
  if (k === null) return null;
  // Tested in place (this runs for every new sample); the two sides are copied only for a step that passes.
  const cut = wFrom + k;
  const worseIsUp = o.improvementDirection === 'decreasing';
  const sorted = sortedPart();
  const p = sorted
    ? mannWhitneyOfSorted(sorted, size, values, cut, to, worseIsUp).p
    : worseIsUp
      ? mannWhitneyGreaterIn(values, wFrom, cut, values, cut, to).p
      : mannWhitneyGreaterIn(values, cut, to, values, wFrom, cut).p;
  if (p >= o.significance) return null;
  const before = values.slice(wFrom, cut);
  const after = values.slice(cut, to);
  const baselineMedian = median(before);
  const recentMedian = median(after);
  const ratio = baselineMedian === 0 ? (recentMedian === 0 ? 1 : Infinity) : recentMedian / baselineMedian;
  const past = (r: number, limit: number) => (worseIsUp ? r >= limit : r <= limit);
  const severity = past(ratio, t.critical) ? 'critical' : past(ratio, t.warning) ? 'warning' : null;
  if (!severity || !past(trendAdjustedRatio(values.slice(wFrom, to), k), t.warning)) return null;
  return {
    index: start + k,
    before: before.length,
    after: after.length,
    baselineMedian,
    recentMedian,
    ratio,
    ratioLow: NaN,
    ratioHigh: NaN,
    p,
    severity,
  };
}

/** The change point with its ratio's 95% bootstrap interval (seeded by its place, so the same samples give the same interval). */
function withInterval(values: readonly number[], from: number, to: number, change: ChangePoint): ChangePoint {
  const cut = from + change.index;
  const ci = ratioInterval(values.slice(cut - change.before, cut), values.slice(cut, to), 0.95, 400, change.index + 1);
  return { ...change, ratioLow: ci.low, ratioHigh: ci.high };
}

/** A regression being alerted on: where it began, and the baseline it is measured against (frozen when raised). */
export interface ActiveStep {
  severity: 'warning' | 'critical';
  baselineMedian: number;
  ratio: number;
  p: number;
  changeIndex: number;
}

export interface StepState {
  active?: ActiveStep;
  /** A change point found but not yet confirmed, and on how many samples in a row. */
  pending?: { index: number; streak: number };
}

/**
 * One alert per regression, decided sample by sample: a step in the worse direction (see locateStep) found at
 * the same place on `confirmations` samples in a row raises an alert carrying that change point. While it is
 * active it escalates once to critical if the samples since the change get that bad, and clears when the
 * recent median is back within half the warning margin of the frozen baseline (hysteresis). A further step,
 * whose baseline lies wholly after the first change, raises a new alert. The series is values[from, to) (all of
 * values by default); the state's indexes count from `from`.
 */
export function detectStep(
  values: readonly number[],
  state: StepState,
  t: Thresholds,
  o: DetectorOptions,
  from = 0,
  to = values.length,
): { event: 'raised' | 'escalated' | 'cleared' | null; state: StepState; change: ChangePoint | null } {
  const active = state.active;
  const n = to - from;
  const windowStart = Math.max(0, n - (o.baselineWindow + o.recentWindow));
  const change = !active || windowStart >= active.changeIndex ? locate(values, t, o, from, to) : null;
  if (change && (!active || change.index > active.changeIndex)) {
    const pending =
      state.pending && Math.abs(state.pending.index - change.index) <= 2
        ? { index: change.index, streak: state.pending.streak + 1 }
        : { index: change.index, streak: 1 };
    if (pending.streak >= o.confirmations) {
      const raised: ActiveStep = {
        severity: change.severity as 'warning' | 'critical',
        baselineMedian: change.baselineMedian,
        ratio: change.ratio,
        p: change.p,
        changeIndex: change.index,
      };
      return { event: 'raised', state: { active: raised }, change: withInterval(values, from, to, change) };
    }
    return { event: null, state: { ...state, pending }, change: null };
  }
  if (!active) return { event: null, state: {}, change: null };
  const recent = values.slice(from + Math.max(active.changeIndex, n - o.recentWindow), to);
  const ratio = active.baselineMedian === 0 ? 1 : median(recent) / active.baselineMedian;
  const worseIsUp = o.improvementDirection === 'decreasing';
  const past = (limit: number) => (worseIsUp ? ratio >= limit : ratio <= limit);
  if (recent.length >= o.minAfter && !past(1 + (t.warning - 1) / 2)) return { event: 'cleared', state: {}, change: null };
  if (active.severity === 'warning' && recent.length >= o.minAfter && past(t.critical)) {
    return { event: 'escalated', state: { active: { ...active, severity: 'critical', ratio } }, change: null };
  }
  return { event: null, state: { active: { ...active, ratio } }, change: null };
}
