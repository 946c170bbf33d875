import { normalCdf } from './descriptive.js';
import { boundOf, sortedCopy } from './scratch.js';

/**
 * Mann-Whitney U test of "b tends to be larger than a": one-sided p-value, normal approximation with tie correction.
 * Ranks come from merging the two samples sorted on their own (native sorts, see sortedCopy), a run of equal
 * values across both sharing its average rank.
 */
export function mannWhitneyGreater(a: readonly number[], b: readonly number[]): { u: number; z: number; p: number } {
  return mannWhitneyGreaterIn(a, 0, a.length, b, 0, b.length);
}

/** mannWhitneyGreater of a[aFrom, aTo) and b[bFrom, bTo), with no copies of those parts. */
export function mannWhitneyGreaterIn(
  a: readonly number[],
  aFrom: number,
  aTo: number,
  b: readonly number[],
  bFrom: number,
  bTo: number,
): { u: number; z: number; p: number } {
  const n1 = aTo - aFrom;
  const n2 = bTo - bFrom;
  if (n1 <= 0 || n2 <= 0) return { u: 0, z: 0, p: 1 };
  const sa = sortedCopy(a, aFrom, aTo, 0);
  const sb = sortedCopy(b, bFrom, bTo, 1);
  let tieTerm = 0;
  let rb = 0;
  for (let i = 0, j = 0; i < n1 || j < n2;) {
    const fromA = j >= n2 || (i < n1 && sa[i] <= sb[j]);
    const v = fromA ? sa[i] : sb[j];
    const first = i + j;
    let inB = 0;
    while (i < n1 && sa[i] === v) i++;
    while (j < n2 && sb[j] === v) {
      j++;
      inB++;
    }
    // A NaN equals nothing, itself included: it takes a rank of its own (and the loop moves on).
    if (i + j === first) {
      if (fromA) i++;
      else {
        j++;
        inB++;
      }
    }
    const t = i + j - first;
    rb += inB * ((first + i + j - 1) / 2 + 1);
    tieTerm += t ** 3 - t;
  }
  return mannWhitneyOf(rb, tieTerm, n1, n2);
}

/** U, z and p from b's rank sum `rb` and the ties' Σ(t³ − t). */
function mannWhitneyOf(rb: number, tieTerm: number, n1: number, n2: number): { u: number; z: number; p: number } {
  const u = rb - (n2 * (n2 + 1)) / 2;
  const n = n1 + n2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  if (sigma === 0) return { u, z: 0, p: 1 };
  const z = (u - (n1 * n2) / 2 - 0.5) / sigma;
  return { u, z, p: 1 - normalCdf(z) };
}

/**
 * mannWhitneyGreater of the two sides of a part of a series split at `cut`, the later side being values[cut, to),
 * given the whole part already in ascending order (`sorted`, its n values, no NaN): of the earlier side against
 * the later when `laterGreater` ("the later values tend to be larger"), else the other way round. The step
 * detector asks this for every new sample, and its split has sorted the part already (see bestSplit). The later
 * side's ranks are found by binary search, the ties in one walk: every rank is a whole or half number, so every
 * sum is exact, and the result is the two-sample merge's to the last bit.
 */
export function mannWhitneyOfSorted(
  sorted: ArrayLike<number>,
  n: number,
  values: readonly number[],
  cut: number,
  to: number,
  laterGreater: boolean,
): { u: number; z: number; p: number } {
  const nLater = to - cut;
  const nEarlier = n - nLater;
  if (nLater <= 0 || nEarlier <= 0) return { u: 0, z: 0, p: 1 };
  let tieTerm = 0;
  for (let i = 0; i < n;) {
    const v = sorted[i];
    const first = i;
    while (i < n && sorted[i] === v) i++;
    const t = i - first;
    tieTerm += t * t * t - t;
  }
  // A value's rank is the average of the ranks its run of equal values takes: from (below it) + 1 to (up to it).
  let later = 0;
  for (let k = cut; k < to; k++) {
    const v = values[k];
    const below = boundOf(sorted, n, v, false);
    const upTo = boundOf(sorted, n, v, true);
    later += (below + upTo - 1) / 2 + 1;
  }
  return laterGreater ? mannWhitneyOf(later, tieTerm, nEarlier, nLater) : mannWhitneyOf((n * (n + 1)) / 2 - later, tieTerm, nLater, nEarlier);
}

export interface Thresholds {
  /** Ratio recent/baseline at which a regression is a warning (e.g. 1.5 for latency, 0.75 for throughput). */
  warning: number;
  critical: number;
}
