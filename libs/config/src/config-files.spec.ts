import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAnalyzerConfig } from './analyzer-config.js';
import { ConfigError } from './config-error.js';
import { parseResourceManagerConfig } from './resource-manager-config.js';
import { parseWorkerTemplates } from './worker-templates.js';

// What each app prints and exits 78 with is `configuration error in ${err.describe()}`: these tables pin the
// describe() text of every loader; one process run per app (apps/*/test/config-errors.e2e-spec.ts) pins the exit. The
// apps' own settings (environment and flags) are pinned by their settings specs, e.g. apps/worker/src/worker-settings.spec.ts.

const base = mkdtempSync(join(tmpdir(), 'config-files-spec-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const cpu = {
  provider: 'LOCAL',
  resources: { cpu: 2, memory_gb: 4 },
  capabilities: ['CPU'],
  runners: { test: { '.mjs': ['node', '--test', '{test_file}'] } },
};

/** The ConfigError `load` throws, described as a person reads it. */
function describeError(load: () => unknown): string {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.describe();
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('worker_templates.json: the file, the template and the field', () => {
  it('names each bad field of each template', () => {
    const text = describeError(() =>
      parseWorkerTemplates(
        {
          cpu,
          'gpu-worker': {
            provider: 'LOCAL',
            resources: { cpu: 'four', gpu: 1 },
            capabilities: ['GPU'],
            runners: { test: { '.mjs': ['node', '{tset_file}'] }, exit_codes: { '.py': { '5': 'maybe' } }, warm: { '.py': 'yes', py: true } },
          },
        },
        base,
      ),
    );
    expect(text).toMatch(/^worker_templates\.json:/);
    expect(text).toContain('- template gpu-worker: resources.cpu: must be a whole number of CPUs');
    expect(text).toMatch(/- template gpu-worker: runners.test\[".mjs"\]: unknown placeholder \{tset_file\}/);
    expect(text).toContain('- template gpu-worker: runners.exit_codes[".py"]["5"]: must be one of passed, skipped, failed');
    expect(text).toContain('- template gpu-worker: runners.warm[".py"]: must be true, false or "session"');
    expect(text).toMatch(/- template gpu-worker: runners.warm.*keys are file extensions such as .py/);
  });
});

describe('resource_manager_config.json: the key and the reason', () => {
  const templates = parseWorkerTemplates({ cpu }, base).value;
  it.each([
    ['min above max', { min_workers: 5, max_workers: 2 }, 'min_workers: 5 is above max_workers 2'],
    ['min above max for one pool', { pools: { cpu: { min_workers: 3, max_workers: 1 } } }, 'pools.cpu.min_workers: 3 is above max_workers 1'],
    ['a negative cooldown', { scale_down_cooldown: -10 }, 'scale_down_cooldown: must not be negative'],
    ['an unknown strategy', { scaling_strategy: 'RANDOM' }, 'scaling_strategy: must be one of STATIC, STEPWISE, ADAPTIVE, PREDICTIVE'],
    ['a wrong type', { max_workers: 'ten' }, 'max_workers: must be a whole number from 0 to 1000'],
    ['a zero polling interval', { polling_interval: 0 }, 'polling_interval: must be greater than 0'],
    ['an unknown key', { max_wrokers: 3 }, 'max_wrokers: unknown field'],
    ['an unknown pool', { pools: { tpu: { max_workers: 1 } } }, 'pools.tpu: no such pool in worker_templates.json'],
    ['fractional spares', { pools: { cpu: { warm_spares: 1.5 } } }, 'pools.cpu.warm_spares: must be a whole number from 0 to 64'],
  ])('%s', (_label, raw, message) => {
    const text = describeError(() => parseResourceManagerConfig(raw, templates));
    expect(text).toMatch(/^resource_manager_config\.json:/);
    expect(text).toContain(`- ${message}`);
  });

  it('defaults to DEMAND with a warm spare for each worker it may start (at most 8); the seed strategies start cold', () => {
    const pool = (raw: object) => parseResourceManagerConfig(raw, templates).value.pools[0];
    expect(pool({ max_workers: 6 })).toMatchObject({ warmSpares: 6, policy: { strategy: 'DEMAND', scaleDownStabilizationMs: 60_000 } });
    expect(pool({ max_workers: 40 }).warmSpares).toBe(8);
    expect(pool({ max_workers: 6, warm_spares: 2 }).warmSpares).toBe(2);
    expect(pool({ max_workers: 6, scaling_strategy: 'ADAPTIVE' }).warmSpares).toBe(0);
    expect(pool({ max_workers: 6, scaling_strategy: 'ADAPTIVE', pools: { cpu: { warm_spares: 1 } } }).warmSpares).toBe(1);
  });

  it('reports the seed keys it accepts but does not act on, and starts', () => {
    const { warnings } = parseResourceManagerConfig({ cost_optimization_weight: 0.5, preferred_regions: ['us-east-1'], max_workers: 1 }, templates);
    expect(warnings.join('\n')).toMatch(/cost_optimization_weight, preferred_regions accepted but without effect/);
  });
});

describe('performance_analyzer_config.json: the key and the reason', () => {
  const good = {
    polling_interval: 0.3,
    history_window: 200,
    trend_analysis: { minimum_data_points: 10 },
    regression_detection: { baseline_window: 30, recent_window: 10, significance: 0.001 },
  };
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
    ['an unknown key', { colour: 'red' }, 'colour: unknown field'],
  ])('%s', (_label, bad, message) => {
    const text = describeError(() => parseAnalyzerConfig({ ...good, ...bad }));
    expect(text).toMatch(/^performance_analyzer_config\.json:/);
    expect(text).toContain(`- ${message}`);
  });

  it('accepts the good file it is varied from', () => {
    expect(() => parseAnalyzerConfig(good)).not.toThrow();
  });
});
