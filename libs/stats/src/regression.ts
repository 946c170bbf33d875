import { normalCdf } from './descriptive.js';

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
