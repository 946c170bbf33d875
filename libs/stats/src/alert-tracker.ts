import { median } from './descriptive.js';
import { compareWindows, type StepChange, type StepOptions, type Thresholds } from './regression.js';

/** A regression being alerted on: the baseline it is measured against is frozen when it is raised. */
export interface ActiveAlert {
  severity: 'warning' | 'critical';
  baselineMedian: number;
  ratio: number;
  p: number;
}

export type AlertEvent = 'raised' | 'escalated' | 'cleared';

/** What the tracker carries from one sample to the next for one series. */
export interface AlertState {
  active?: ActiveAlert;
  /** Consecutive samples a regression has been seen for while none is active. */
  streak: number;
}

/** Samples in a row a regression must be seen before it is raised (like a `for:` clause in alert rules). */
export const CONFIRMATIONS = 3;

/**
 * One alert per regression, not one per sample: while no alert is active, a significant step change past
 * a threshold seen on CONFIRMATIONS (3) samples in a row raises one (baseline frozen); while one is active, it escalates once to critical if the
 * recent median gets that bad, and clears when the recent median is back within halfway of the warning
 * ratio of the frozen baseline (hysteresis, so it does not flap at the edge).
 */
export function evaluateAlert(
  values: readonly number[],
  state: AlertState,
  t: Thresholds,
  o: StepOptions,
): { event: AlertEvent | null; state: AlertState; change: StepChange | null } {
  if (values.length < 2 * o.recentWindow) return { event: null, state, change: null };
  const recent = values.slice(-o.recentWindow);
  const active = state.active;
  if (!active) {
    const baseline = values.slice(Math.max(0, values.length - o.recentWindow - o.baselineWindow), values.length - o.recentWindow);
    const change = compareWindows(baseline, recent, t, o);
    if (!change.severity) return { event: null, state: { streak: 0 }, change };
    if (state.streak + 1 < CONFIRMATIONS) return { event: null, state: { streak: state.streak + 1 }, change };
    return {
      event: 'raised',
      state: { streak: 0, active: { severity: change.severity, baselineMedian: change.baselineMedian, ratio: change.ratio, p: change.p } },
      change,
    };
  }
  const ratio = active.baselineMedian === 0 ? 1 : median(recent) / active.baselineMedian;
  const worseIsUp = o.improvementDirection === 'decreasing';
  const past = (limit: number) => (worseIsUp ? ratio >= limit : ratio <= limit);
  if (!past(1 + (t.warning - 1) / 2)) return { event: 'cleared', state: { streak: 0 }, change: null };
  if (active.severity === 'warning' && past(t.critical))
    return { event: 'escalated', state: { streak: 0, active: { ...active, severity: 'critical', ratio } }, change: null };
  return { event: null, state: { streak: 0, active: { ...active, ratio } }, change: null };
}
