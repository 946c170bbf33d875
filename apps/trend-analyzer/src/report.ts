import type { StoredAlert } from './analyzer.repository.js';
import type { AnomalyRecord, Snapshot } from './analysis.service.js';
import type { EventsAccount } from './ingest.service.js';

export interface Report {
  generated_at: string;
  events: EventsAccount;
  pools: Record<string, { completed: number; failed: number }>;
  metrics: string[];
  series: Array<{
    metric: string;
    group: string;
    direction: string;
    summary: { n: number; mean: number; median: number; p95: number; p99: number; min: number; max: number };
    trend: {
      classification: string;
      direction: string;
      relative_change: number;
      confidence: number;
      least_squares_slope: number;
      r2: number;
      theil_sen_slope: number;
      theil_sen_intercept: number;
    };
    alert: Record<string, unknown> | null;
    anomalies: Array<{ at: number; value: number; method: string; severity: string; expected: [number, number]; deviation_percent: number }>;
    points: Array<[number, number]>;
  }>;
  alerts: { active: Array<Record<string, unknown>>; recent: StoredAlert[] };
}

const round = (x: number, digits = 4) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

/** Per pool, the attempts counted as completed and as failed. */
export function poolsOf(counters: Record<string, number>): Report['pools'] {
  const pools: Report['pools'] = {};
  for (const [k, v] of Object.entries(counters)) {
    const m = /^(completed|failed):(.+)$/.exec(k);
    if (!m) continue;
    const p = (pools[m[2]] ??= { completed: 0, failed: 0 });
    p[m[1] as 'completed' | 'failed'] = v;
  }
  return pools;
}

/** Every series with its summary, trend, alert, anomalies and points. */
export function seriesOf(snapshot: Snapshot, anomalies: readonly AnomalyRecord[]): Report['series'] {
  return snapshot.series.map((s) => ({
    metric: s.metric,
    group: s.group,
    direction: s.direction,
    summary: {
      n: s.summary.n,
      mean: round(s.summary.mean),
      median: round(s.summary.median),
      p95: round(s.summary.p95),
      p99: round(s.summary.p99),
      min: s.summary.min,
      max: s.summary.max,
    },
    trend: {
      classification: s.trend.classification,
      direction: s.trend.direction,
      relative_change: round(s.trend.relativeChange),
      confidence: round(s.trend.confidence),
      least_squares_slope: round(s.trend.leastSquares.slope, 6),
      r2: round(s.trend.leastSquares.r2),
      theil_sen_slope: round(s.trend.theilSen.slope, 6),
      theil_sen_intercept: round(s.trend.theilSen.intercept),
    },
    alert: s.alert,
    anomalies: anomalies
      .filter((a) => a.series === s.series)
      .map((a) => ({
        at: a.at,
        value: a.value,
        method: a.method,
        severity: a.severity,
        expected: [round(a.expected[0]), round(a.expected[1])] as [number, number],
        deviation_percent: round(a.deviationPercent, 1),
      })),
    points: s.points.map((p) => [p.at, p.value] as [number, number]),
  }));
}

export function activeAlertsOf(snapshot: Snapshot): Array<Record<string, unknown>> {
  return snapshot.series.flatMap((s) => (s.alert ? [{ series: s.series, ...s.alert }] : []));
}

/** The analysis as one JSON document: `GET /report`, and the input of the HTML report. */
export function buildReport(
  snapshot: Snapshot,
  anomalies: readonly AnomalyRecord[],
  recentAlerts: StoredAlert[],
  account: { events: EventsAccount; counters: Record<string, number> },
): Report {
  return {
    generated_at: new Date(snapshot.at || Date.now()).toISOString(),
    events: account.events,
    pools: poolsOf(account.counters),
    metrics: [...new Set(snapshot.series.map((s) => s.metric))].sort(),
    series: seriesOf(snapshot, anomalies),
    alerts: { active: activeAlertsOf(snapshot), recent: recentAlerts },
  };
}
