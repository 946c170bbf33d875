import { EXIT_CONFIG_ERROR } from '@fleet/app';
import { TEST_REDIS_URL, makeConfigDir, startApp } from '@fleet/testing';
import { fastAnalyzerConfig } from './analyzer-harness.js';

describe('a bad performance_analyzer_config.json stops start-up with the key and the reason', () => {
  it.each([
    ['a wrong type', { history_window: 'long' }, 'history_window: must be a whole number of samples'],
    ['a window of 0', { history_window: 0 }, 'history_window: must be at least 20 samples'],
    ['a recent window of 0', { regression_detection: { recent_window: 0 } }, 'regression_detection.recent_window: must be at least 3'],
    [
      'an unknown metric direction',
      { trend_analysis: { trend_classification: { improvement_direction: { latency_ms: 'sideways' } } } },
      'trend_analysis.trend_classification.improvement_direction.latency_ms: must be "increasing" or "decreasing"',
    ],
    [
      'isolation forest switched on',
      { anomaly_detection: { isolation_forest: { enabled: true, contamination: 0.05 } } },
      'anomaly_detection.isolation_forest: is not supported here',
    ],
    ['email alerts', { reporting: { email_alerts: true } }, 'reporting.email_alerts: email alerts are not supported'],
    [
      'a threshold the wrong way round',
      { reporting: { alert_thresholds: { throughput_items_per_second: { warning: 1.5, critical: 2 } } } },
      'reporting.alert_thresholds.throughput_items_per_second.warning: throughput_items_per_second is better higher',
    ],
    ['an unknown key', { polling_interval: 1, colour: 'red' }, 'colour: unknown field'],
  ])('%s', async (_label, bad, message) => {
    const dir = makeConfigDir({ 'performance_analyzer_config.json': { ...fastAnalyzerConfig(), ...bad } });
    try {
      const proc = startApp('trend-analyzer', [], { REDIS_URL: TEST_REDIS_URL, CONFIG_DIR: dir.path, TREND_ANALYZER_PORT: '0' });
      expect((await proc.exited).code).toBe(EXIT_CONFIG_ERROR);
      expect(proc.output()).toContain('configuration error in performance_analyzer_config.json:');
      expect(proc.output()).toContain(`- ${message}`);
    } finally {
      dir.remove();
    }
  });
});
