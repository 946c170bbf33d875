import { join } from 'node:path';
import { z } from 'zod';
import { type FieldError, toFieldErrors, type WorkerTemplate } from '@fleet/contracts';
import { type PoolPolicy, SCALING_STRATEGIES, type ScalingStrategy } from '@fleet/scaling';
import { ConfigError } from './config-error.js';
import { readJsonFile } from './json-file.js';
import type { Loaded } from './worker-templates.js';

export const RESOURCE_MANAGER_CONFIG_FILE = 'resource_manager_config.json';

const count = (max: number) =>
  z
    .int({ error: `must be a whole number from 0 to ${max}` })
    .min(0, { error: `must be a whole number from 0 to ${max}` })
    .max(max, { error: `must be a whole number from 0 to ${max}` });
const positiveInt = (max: number) =>
  z
    .int({ error: `must be a whole number from 1 to ${max}` })
    .min(1, { error: `must be a whole number from 1 to ${max}` })
    .max(max, { error: `must be a whole number from 1 to ${max}` });
const secondsSchema = (max: number) =>
  z
    .number({ error: 'must be a number of seconds' })
    .min(0, { error: 'must not be negative' })
    .max(max, { error: `must be at most ${max} seconds` });
const percent = z.number({ error: 'must be a percentage' }).min(0, { error: 'must be from 0 to 100' }).max(100, { error: 'must be from 0 to 100' });

/** Keys that may be set for all pools at the top, and per pool under `pools.<name>`. */
const poolKeys = {
  min_workers: count(1000),
  max_workers: count(1000),
  scaling_strategy: z.enum(SCALING_STRATEGIES, { error: `must be one of ${SCALING_STRATEGIES.join(', ')}` }),
  queue_threshold_high: count(10_000_000),
  queue_threshold_low: count(10_000_000),
  target_backlog_per_worker: z.number({ error: 'must be a number' }).gt(0, { error: 'must be greater than 0' }).max(1_000_000),
  scale_up_cooldown: secondsSchema(86_400),
  scale_down_cooldown: secondsSchema(86_400),
  scale_down_stabilization: secondsSchema(86_400),
  forecast_horizon: positiveInt(10_000),
  worker_startup_buffer: secondsSchema(3600),
  max_step_up: positiveInt(1000),
  max_step_down: positiveInt(1000),
  enable_predictive_scaling: z.boolean({ error: 'must be true or false' }),
  cpu_threshold_high: percent,
  memory_threshold_high: percent,
  stop_grace_period: secondsSchema(3600),
  warm_spares: count(64),
  worker_env: z.record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name' }),
    z.string({ error: 'must be a string' }),
  ),
};

/** The seed's keys this fleet accepts (checked for type) but does not act on; reported at start-up. */
const seedOnlyKeys = {
  cpu_threshold_low: percent,
  memory_threshold_low: percent,
  cost_optimization_weight: z.number({ error: 'must be a number' }).min(0).max(1),
  enable_anomaly_detection: z.boolean({ error: 'must be true or false' }),
  preferred_providers: z.array(z.string()),
  preferred_regions: z.array(z.string()),
};

const FileSchema = z
  .strictObject({
    ...poolKeys,
    ...seedOnlyKeys,
    polling_interval: z
      .number({ error: 'must be a number of seconds' })
      .gt(0, { error: 'must be greater than 0' })
      .max(3600, { error: 'must be at most 3600 seconds' }),
    metrics_window: z
      .int({ error: 'must be a whole number' })
      .min(2, { error: 'must be at least 2' })
      .max(100_000, { error: 'must be at most 100000' }),
    deprovision_on_stop: z.boolean({ error: 'must be true or false' }),
    lease_ttl: secondsSchema(3600),
    pools: z.record(z.string(), z.strictObject(poolKeys).partial()),
  })
  .partial();

type PoolKeys = { [K in keyof typeof poolKeys]?: z.output<(typeof poolKeys)[K]> };

/** DEMAND's spares when `warm_spares` is not set: max_workers, up to this many. */
export const DEFAULT_DEMAND_SPARES = 8;

/** The strategy of a pool whose config names none. */
export const DEFAULT_SCALING_STRATEGY: ScalingStrategy = 'DEMAND';

/** The seed's DynamicResourceManager defaults (the strategy aside: DEMAND), plus this fleet's own keys. */
const DEFAULTS = {
  min_workers: 1,
  max_workers: 10,
  scaling_strategy: DEFAULT_SCALING_STRATEGY,
  queue_threshold_high: 10,
  queue_threshold_low: 2,
  scale_up_cooldown: 300,
  scale_down_cooldown: 600,
  forecast_horizon: 10,
  worker_startup_buffer: 120,
  max_step_up: 4,
  max_step_down: 2,
  enable_predictive_scaling: false,
  stop_grace_period: 30,
  polling_interval: 30,
  metrics_window: 30,
  deprovision_on_stop: true,
};

export interface ManagedPool {
  pool: string;
  /** LOCAL pools are scaled; MANUAL pools are only observed. */
  managed: boolean;
  policy: PoolPolicy;
  workerEnv: Record<string, string>;
  stopGraceMs: number;
  /** Tasks one worker of the pool runs at once (its template's concurrency). */
  slotsPerWorker: number;
  /** Loaded processes kept waiting to become workers at once (`warm_spares`); 0: every start is cold. */
  warmSpares: number;
}

export interface ResourceManagerConfig {
  pollingIntervalMs: number;
  metricsWindow: number;
  deprovisionOnStop: boolean;
  leaseTtlMs: number;
  pools: ManagedPool[];
}

export function loadResourceManagerConfig(configDir: string, templates: readonly WorkerTemplate[]): Loaded<ResourceManagerConfig> {
  return parseResourceManagerConfig(readJsonFile(join(configDir, RESOURCE_MANAGER_CONFIG_FILE)), templates);
}

export function parseResourceManagerConfig(raw: unknown, templates: readonly WorkerTemplate[]): Loaded<ResourceManagerConfig> {
  const parsed = FileSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new ConfigError(RESOURCE_MANAGER_CONFIG_FILE, toFieldErrors(parsed.error, '(file)'));
  const f = parsed.data;
  const problems: FieldError[] = [];
  const warnings: string[] = [];
  const ignored = Object.keys(seedOnlyKeys).filter((k) => k in f);
  if (ignored.length > 0) warnings.push(`${RESOURCE_MANAGER_CONFIG_FILE}: ${ignored.join(', ')} accepted but without effect here (see README)`);

  const known = new Set(templates.map((t) => t.pool));
  for (const name of Object.keys(f.pools ?? {})) {
    if (!known.has(name))
      problems.push({ field: `pools.${name}`, reason: `no such pool in worker_templates.json (pools: ${[...known].join(', ')})` });
  }
  const pollingIntervalMs = (f.polling_interval ?? DEFAULTS.polling_interval) * 1000;
  const metricsWindow = f.metrics_window ?? DEFAULTS.metrics_window;

  const pools = templates.map((t): ManagedPool => {
    const own: PoolKeys = f.pools?.[t.pool] ?? {};
    const pick = <K extends keyof PoolKeys>(k: K): PoolKeys[K] => (own[k] !== undefined ? own[k] : f[k]);
    const where = (k: string) => (own[k as keyof PoolKeys] !== undefined ? `pools.${t.pool}.${k}` : k);
    const min = pick('min_workers') ?? DEFAULTS.min_workers;
    const max = pick('max_workers') ?? DEFAULTS.max_workers;
    if (min > max)
      problems.push({
        field: where('min_workers'),
        reason: `${min} is above max_workers ${max}${where('min_workers') === 'min_workers' ? '' : ` for pool ${t.pool}`}`,
      });
    const high = pick('queue_threshold_high') ?? DEFAULTS.queue_threshold_high;
    const low = pick('queue_threshold_low') ?? DEFAULTS.queue_threshold_low;
    if (low > high) problems.push({ field: where('queue_threshold_low'), reason: `${low} is above queue_threshold_high ${high}` });
    const downCooldown = pick('scale_down_cooldown') ?? DEFAULTS.scale_down_cooldown;
    const strategy = pick('scaling_strategy') ?? DEFAULTS.scaling_strategy;
    // DEMAND measures start-up and scales down by its window: the seed's 120 s buffer and 600 s cooldown would
    // hold idle workers for ten minutes. Its own defaults: 5 s before a start-up is measured, a 60 s window.
    const demand = strategy === 'DEMAND';
    return {
      pool: t.pool,
      managed: t.provider === 'LOCAL',
      workerEnv: pick('worker_env') ?? {},
      stopGraceMs: (pick('stop_grace_period') ?? DEFAULTS.stop_grace_period) * 1000,
      slotsPerWorker: t.concurrency,
      // DEMAND keeps spares for a whole burst unless told otherwise (capped: each costs ~110 MB of memory); the
      // seed's strategies start cold, as they always have.
      warmSpares: pick('warm_spares') ?? (demand ? Math.min(max, DEFAULT_DEMAND_SPARES) : 0),
      policy: {
        strategy,
        minWorkers: min,
        maxWorkers: max,
        queueThresholdHigh: high,
        queueThresholdLow: low,
        targetBacklogPerWorker: pick('target_backlog_per_worker') ?? t.concurrency,
        scaleUpCooldownMs: (pick('scale_up_cooldown') ?? DEFAULTS.scale_up_cooldown) * 1000,
        scaleDownCooldownMs: downCooldown * 1000,
        scaleDownStabilizationMs: (pick('scale_down_stabilization') ?? (demand ? 60 : downCooldown)) * 1000,
        forecastHorizon: pick('forecast_horizon') ?? DEFAULTS.forecast_horizon,
        startupBufferMs: (pick('worker_startup_buffer') ?? (demand ? 5 : DEFAULTS.worker_startup_buffer)) * 1000,
        maxStepUp: pick('max_step_up') ?? DEFAULTS.max_step_up,
        maxStepDown: pick('max_step_down') ?? DEFAULTS.max_step_down,
        predictive: pick('enable_predictive_scaling') ?? DEFAULTS.enable_predictive_scaling,
        metricsWindow,
        ...(pick('cpu_threshold_high') !== undefined && { cpuThresholdHigh: pick('cpu_threshold_high') }),
        ...(pick('memory_threshold_high') !== undefined && { memoryThresholdHigh: pick('memory_threshold_high') }),
      },
    };
  });
  if (problems.length > 0) throw new ConfigError(RESOURCE_MANAGER_CONFIG_FILE, problems);
  for (const p of pools)
    if (!p.managed && f.pools?.[p.pool])
      warnings.push(`${RESOURCE_MANAGER_CONFIG_FILE}: pools.${p.pool} is a MANUAL pool: it is observed, never scaled`);
  return {
    value: {
      pollingIntervalMs,
      metricsWindow,
      deprovisionOnStop: f.deprovision_on_stop ?? DEFAULTS.deprovision_on_stop,
      leaseTtlMs: (f.lease_ttl ?? Math.max(3 * (pollingIntervalMs / 1000), 5)) * 1000,
      pools,
    },
    warnings,
  };
}
