import { type Service, startService, TEST_REDIS_URL } from '@fleet/testing';

export interface Analyzer extends Service {
  summary(): Promise<{
    events: { processed: number; malformed: number; duplicates: number; written: number; lost_before_read: number; gaps: unknown[] };
  }>;
}

/** `redisUrl`: a suite's private Redis (the shared test Redis by default). */
export async function startAnalyzer(opts: { prefix: string; configDir: string; id?: string; redisUrl?: string }): Promise<Analyzer> {
  const s = await startService('trend-analyzer', {
    REDIS_URL: opts.redisUrl ?? TEST_REDIS_URL,
    FLEET_PREFIX: opts.prefix,
    CONFIG_DIR: opts.configDir,
    ...(opts.id && { TREND_ANALYZER_ID: opts.id }),
  });
  return { ...s, summary: async () => (await s.http.get('/metrics/summary').expect(200)).body };
}

/** A fast performance_analyzer_config.json: analysis every 300 ms, alerts on run time. */
export function fastAnalyzerConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    polling_interval: 0.3,
    history_window: 200,
    anomaly_detection: { z_score_threshold: 3, moving_average: { enabled: true, window_size: 5, threshold_factor: 3 } },
    trend_analysis: { minimum_data_points: 10, regression_confidence_threshold: 0.95, trend_classification: { stable_threshold: 0.05 } },
    regression_detection: { baseline_window: 30, recent_window: 10, significance: 0.001 },
    reporting: { generate_charts: true, alert_thresholds: { run_time_ms: { warning: 1.2, critical: 2 } } },
    metrics_grouping: ['model_name'],
    claim_idle_ms: 1000,
    ...overrides,
  };
}
