// Realistic CI timing series with labelled change points, for `npm run eval:regressions`: heavy tails,
// outliers, two machine types (bimodal runs), slow drift, changes of variance, improvements as well as
// regressions. Only regression steps are labelled: a drift, a change of variance or an improvement must not
// raise a regression alert. Seeded: the same seed gives the same set.
import { seededRandom } from '@fleet/stats';

export interface LabelledSeries {
  name: string;
  values: number[];
  /** Index of the first sample after each regression step (the regression direction only). */
  regressions: number[];
  /** What was put in, for the eval's breakdown. */
  kind: string;
}

export function generateSeries(count: number, seed = 42): LabelledSeries[] {
  const rnd = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(rnd() || 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const between = (a: number, b: number) => a + (b - a) * rnd();
  const out: LabelledSeries[] = [];
  for (let s = 0; s < count; s++) {
    const n = Math.round(between(150, 300));
    const base = Math.exp(between(Math.log(50), Math.log(5000)));
    const noise = ['gaussian', 'heavy', 'bimodal', 'outliers'][s % 4];
    const sigma = between(0.02, 0.07);
    const machine = between(0.08, 0.15);
    const mix = between(0.3, 0.7);
    // Level and noise multipliers over time; changes are at least 60 samples apart, after a 40-sample baseline.
    const level = new Array<number>(n).fill(1);
    const spread = new Array<number>(n).fill(1);
    const regressions: number[] = [];
    const kinds: string[] = [noise];
    const shape = s % 10;
    const slots: number[] = [];
    for (let at = 40 + Math.floor(between(0, 30)); at < n - 20; at += 60 + Math.floor(between(0, 40))) slots.push(at);
    const changes = shape < 3 ? 0 : shape < 7 ? 1 : 2;
    for (const at of slots.slice(0, changes)) {
      const what = rnd();
      if (what < 0.6) {
        const step = 1 + between(0.1, 0.5);
        for (let i = at; i < n; i++) level[i] = level[i] * step;
        regressions.push(at);
        kinds.push(`regression +${Math.round((step - 1) * 100)}%`);
      } else if (what < 0.85) {
        const step = 1 - between(0.1, 0.35);
        for (let i = at; i < n; i++) level[i] = level[i] * step;
        kinds.push(`improvement -${Math.round((1 - step) * 100)}%`);
      } else {
        const k = between(2, 3);
        for (let i = at; i < n; i++) spread[i] = k;
        kinds.push(`variance ×${k.toFixed(1)}`);
      }
    }
    if (shape === 9 || (changes === 0 && s % 3 === 0)) {
      // A slow drift: 15-35% over the whole series, in either direction.
      const total = between(0.15, 0.35) * (rnd() < 0.7 ? 1 : -1);
      for (let i = 0; i < n; i++) level[i] = level[i] * (1 + (total * i) / n);
      kinds.push(`drift ${total > 0 ? '+' : ''}${Math.round(total * 100)}%`);
    }
    const values = level.map((l, i) => {
      let e = sigma * spread[i] * normal();
      if (noise === 'heavy') e = (sigma * spread[i] * normal()) / Math.sqrt(Math.max(0.05, rnd() * 1.5)); // t-like tails
      let v = base * l * Math.exp(e);
      if (noise === 'bimodal' && rnd() < mix) v *= 1 + machine;
      if (noise === 'outliers' && rnd() < 0.03) v *= between(1.5, 4);
      return Math.max(1, Math.round(v * 100) / 100);
    });
    out.push({ name: `gen-${String(s).padStart(3, '0')}`, values, regressions, kind: kinds.join(', ') });
  }
  return out;
}
