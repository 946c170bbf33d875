import { normalCdf } from './descriptive.js';
import { sortedCopy } from './scratch.js';

/**
 * Mann-Whitney U test of "b tends to be larger than a": one-sided p-value, normal approximation with tie correction.
 * Ranks come from merging the two samples sorted on their own (native sorts, see sortedCopy), a run of equal
 * values across both sharing its average rank.
 */
export function mannWhitneyGreater(a: readonly number[], b: readonly number[]): { u: number; z: number; p: number } {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return { u: 0, z: 0, p: 1 };
  const sa = sortedCopy(a, 0, n1, 0);
  const sb = sortedCopy(b, 0, n2, 1);
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
