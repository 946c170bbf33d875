import { join } from 'node:path';
import { z } from 'zod';
import { type FieldError, METRIC_NAME, toFieldErrors } from '@fleet/contracts';
import type { AnomalyOptions, Direction, Thresholds } from '@fleet/stats';
import { ConfigError } from './config-error.js';
import { readJsonFile } from './json-file.js';
import type { Loaded } from './worker-templates.js';

export const ANALYZER_CONFIG_FILE = 'performance_analyzer_config.json';

/** Metrics every timing event yields, whatever the task reports. */
export const BUILT_IN_METRICS = ['run_time_ms', 'queue_wait_ms', 'throughput_per_s', 'failure_rate'] as const;
/**
 * Regression alerts every analyzer raises unless its config says otherwise: run time 8% worse than its baseline
 * is a warning, 50% a critical (steps of 10% are common in CI and matter; the significance test and the
 * confirmations keep noise from alerting).
 */
export const DEFAULT_ALERT_THRESHOLDS: Readonly<Record<string, Thresholds>> = { run_time_ms: { warning: 1.08, critical: 1.5 } };
/** Grouping dimensions besides label names. */
export const EVENT_DIMENSIONS = ['task_type', 'pool', 'worker_id'] as const;

const num = (what = 'a number') => z.number({ error: `must be ${what}` });
const metricName = z.string().regex(METRIC_NAME, { error: 'metric names are letters, digits and _' });
const direction = z.enum(['increasing', 'decreasing'], { error: 'must be "increasing" or "decreasing"' });

const FileSchema = z
  .strictObject({
    polling_interval: num('a number of seconds').gt(0, { error: 'must be greater than 0' }).max(3600, { error: 'must be at most 3600' }),
    history_window: z
      .int({ error: 'must be a whole number of samples' })
      .min(20, { error: 'must be at least 20 samples' })
      .max(100_000, { error: 'must be at most 100000' }),
    anomaly_detection: z
      .strictObject({
        z_score_threshold: num().gt(0, { error: 'must be greater than 0' }),
        robust_threshold: num().gt(0, { error: 'must be greater than 0' }),
        window: z.int({ error: 'must be a whole number' }).min(8, { error: 'must be at least 8' }),
        moving_average: z
          .strictObject({
            enabled: z.boolean({ error: 'must be true or false' }),
            window_size: z.int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }),
            threshold_factor: num().gt(0, { error: 'must be greater than 0' }),
          })
          .partial(),
        isolation_forest: z
          .object({ enabled: z.boolean({ error: 'must be true or false' }) })
          .loose()
          .refine((v) => v.enabled === false, {
            error: 'is not supported here: set "enabled": false or remove it (z-score, robust MAD and moving-average detection are)',
          }),
      })
      .partial(),
    trend_analysis: z
      .strictObject({
        minimum_data_points: z.int({ error: 'must be a whole number' }).min(3, { error: 'must be at least 3' }),
        regression_confidence_threshold: num().min(0, { error: 'must be from 0 to 1' }).max(1, { error: 'must be from 0 to 1' }),
        trend_classification: z
          .strictObject({ stable_threshold: num().min(0, { error: 'must not be negative' }), improvement_direction: z.record(metricName, direction) })
          .partial(),
      })
      .partial(),
    regression_detection: z
      .strictObject({
        baseline_window: z.int({ error: 'must be a whole number' }).min(5, { error: 'must be at least 5' }),
        recent_window: z.int({ error: 'must be a whole number' }).min(3, { error: 'must be at least 3' }),
        significance: num().gt(0, { error: 'must be above 0' }).lt(1, { error: 'must be below 1' }),
        min_after: z.int({ error: 'must be a whole number' }).min(2, { error: 'must be at least 2' }),
        confirmations: z.int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).max(20, { error: 'must be at most 20' }),
      })
      .partial(),
    reporting: z
      .strictObject({
        generate_charts: z.boolean({ error: 'must be true or false' }),
        alert_thresholds: z.record(
          metricName,
          z.strictObject({
            warning: num().gt(0, { error: 'must be a positive ratio' }),
            critical: num().gt(0, { error: 'must be a positive ratio' }),
          }),
        ),
        email_alerts: z.literal(false, { error: 'email alerts are not supported: alerts go to the alerts stream and GET /alerts; set false' }),
        email_recipients: z.array(z.string()),
      })
      .partial(),
    metrics_to_track: z.array(metricName),
    metrics_grouping: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, { error: 'must be task_type, pool, worker_id or a label name' })),
    claim_idle_ms: z.int({ error: 'must be a whole number of milliseconds' }).min(100, { error: 'must be at least 100' }),
    max_series: z
      .int({ error: 'must be a whole number' })
      .min(1, { error: 'must be at least 1' })
      .max(10_000_000, { error: 'must be at most 10000000' }),
  })
  .partial();

export interface AnalyzerConfig {
  pollingIntervalMs: number;
  historyWindow: number;
  anomaly: AnomalyOptions;
  trend: { minimumDataPoints: number; confidenceThreshold: number; stableThreshold: number };
  /** Step detection (see @fleet/stats detectStep): windows, the least samples after a change, its level, confirmations. */
  regression: { baselineWindow: number; recentWindow: number; significance: number; minAfter: number; confirmations: number };
  generateCharts: boolean;
  alertThresholds: Record<string, Thresholds>;
  /** Reported metrics to keep; null keeps every metric tasks report. Built-in metrics are always kept. */
  metricsToTrack: string[] | null;
  grouping: string[];
  claimIdleMs: number;
  /** Series kept at most; samples of new series past it are refused and counted (`series_refused`). */
  maxSeries: number;
  directions: Record<string, Direction>;
}

/** Which way is better for a metric: the config's word, or by its name (throughput and rates up, the rest down). */
export function directionOf(config: AnalyzerConfig, metric: string): Direction {
  return config.directions[metric] ?? (/throughput|rate$|per_s(econd)?$/.test(metric) && metric !== 'failure_rate' ? 'increasing' : 'decreasing');
}

export function loadAnalyzerConfig(configDir: string): Loaded<AnalyzerConfig> {
  return parseAnalyzerConfig(readJsonFile(join(configDir, ANALYZER_CONFIG_FILE)));
}

export function parseAnalyzerConfig(raw: unknown): Loaded<AnalyzerConfig> {
  const parsed = FileSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new ConfigError(ANALYZER_CONFIG_FILE, toFieldErrors(parsed.error, '(file)'));
  const f = parsed.data;
  const warnings: string[] = [];
  const problems: FieldError[] = [];
  const ma = f.anomaly_detection?.moving_average;
  const regression = {
    baselineWindow: f.regression_detection?.baseline_window ?? 30,
    recentWindow: f.regression_detection?.recent_window ?? 10,
    significance: f.regression_detection?.significance ?? 0.0001,
    minAfter: f.regression_detection?.min_after ?? 5,
    confirmations: f.regression_detection?.confirmations ?? 3,
  };
  const historyWindow = f.history_window ?? 200;
  if (regression.minAfter > regression.recentWindow) {
    problems.push({ field: 'regression_detection.min_after', reason: `must be at most recent_window (${regression.recentWindow})` });
  }
  if (historyWindow < regression.baselineWindow + regression.recentWindow) {
    problems.push({
      field: 'history_window',
      reason: `must hold regression_detection's baseline_window + recent_window (${regression.baselineWindow + regression.recentWindow}) samples`,
    });
  }
  const config: AnalyzerConfig = {
    pollingIntervalMs: (f.polling_interval ?? 5) * 1000,
    historyWindow,
    anomaly: {
      zScoreThreshold: f.anomaly_detection?.z_score_threshold ?? 3,
      robustThreshold: f.anomaly_detection?.robust_threshold ?? 3.5,
      window: f.anomaly_detection?.window ?? 50,
      ...(ma?.enabled !== false && { movingAverage: { windowSize: ma?.window_size ?? 5, thresholdFactor: ma?.threshold_factor ?? 2 } }),
    },
    trend: {
      minimumDataPoints: f.trend_analysis?.minimum_data_points ?? 10,
      confidenceThreshold: f.trend_analysis?.regression_confidence_threshold ?? 0.95,
      stableThreshold: f.trend_analysis?.trend_classification?.stable_threshold ?? 0.05,
    },
    regression,
    generateCharts: f.reporting?.generate_charts ?? true,
    alertThresholds: { ...DEFAULT_ALERT_THRESHOLDS, ...f.reporting?.alert_thresholds },
    metricsToTrack: f.metrics_to_track ?? null,
    grouping: f.metrics_grouping ?? ['task_type', 'pool'],
    claimIdleMs: f.claim_idle_ms ?? 30_000,
    maxSeries: f.max_series ?? 10_000,
    directions: f.trend_analysis?.trend_classification?.improvement_direction ?? {},
  };
  for (const [metric, t] of Object.entries(config.alertThresholds)) {
    const field = `reporting.alert_thresholds.${metric}`;
    if (directionOf(config, metric) === 'decreasing') {
      if (t.warning <= 1)
        problems.push({ field: `${field}.warning`, reason: `${metric} is better lower, so a regression is a ratio above 1 (e.g. 1.5)` });
      if (t.critical < t.warning) problems.push({ field: `${field}.critical`, reason: `must be at least the warning ratio ${t.warning}` });
    } else {
      if (t.warning >= 1)
        problems.push({ field: `${field}.warning`, reason: `${metric} is better higher, so a regression is a ratio below 1 (e.g. 0.75)` });
      if (t.critical > t.warning) problems.push({ field: `${field}.critical`, reason: `must be at most the warning ratio ${t.warning}` });
    }
  }
  if (problems.length > 0) throw new ConfigError(ANALYZER_CONFIG_FILE, problems);
  if (f.reporting?.email_recipients?.length)
    warnings.push(`${ANALYZER_CONFIG_FILE}: reporting.email_recipients has no effect (email alerts are not supported)`);
  if (f.anomaly_detection?.isolation_forest)
    warnings.push(`${ANALYZER_CONFIG_FILE}: anomaly_detection.isolation_forest is disabled and has no effect`);
  return { value: config, warnings };
}
