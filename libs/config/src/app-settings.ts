import { availableParallelism, hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { WorkerTemplate } from '@fleet/contracts';
import { ConfigError } from './config-error.js';
import { type CommonSettings, type Env, envInt, envOptionalInt, envString, loadCommonSettings, parseEnv } from './env.js';
import { type AnalyzerConfig, loadAnalyzerConfig } from './analyzer-config.js';
import { repoRoot } from './paths.js';
import { loadResourceManagerConfig, type ResourceManagerConfig } from './resource-manager-config.js';
import { loadSecuritySettings, type SecuritySettings } from './security-settings.js';
import { loadWorkerTemplates } from './worker-templates.js';

/** How long finished tasks stay readable, by age and by count (completed and failed alike). */
export interface Retention {
  completedAgeS: number;
  completedCount: number;
  failedAgeS: number;
  failedCount: number;
}

const DAY_S = 24 * 60 * 60;

const RETENTION_ENV = {
  TASK_RETAIN_COMPLETED_S: envInt(1, 365 * DAY_S, DAY_S),
  TASK_RETAIN_COMPLETED_COUNT: envInt(1, 10_000_000, 100_000),
  TASK_RETAIN_FAILED_S: envInt(1, 365 * DAY_S, 7 * DAY_S),
  TASK_RETAIN_FAILED_COUNT: envInt(1, 10_000_000, 100_000),
};

/**
 * `TASK_RETAIN_*`: the coordinator keeps idempotency keys and cancellations as long; workers apply it to each
 * finished task (BullMQ's retention runs when an outcome is recorded).
 */
export function loadRetention(env: Env): Retention {
  const e = parseEnv(RETENTION_ENV, env);
  return {
    completedAgeS: e.TASK_RETAIN_COMPLETED_S,
    completedCount: e.TASK_RETAIN_COMPLETED_COUNT,
    failedAgeS: e.TASK_RETAIN_FAILED_S,
    failedCount: e.TASK_RETAIN_FAILED_COUNT,
  };
}

export interface CoordinatorSettings extends CommonSettings {
  port: number;
  security: SecuritySettings;
  bodyLimitBytes: number;
  retention: Retention;
  /** How long a run (its tasks' results, attempts and cases) stays readable. */
  runRetainS: number;
  /** A test file's expected duration when its history has none. */
  runDefaultTestMs: number;
  /** How often runs are looked after (dependencies released, finished runs finalized). */
  runsTickMs: number;
  templates: WorkerTemplate[];
  warnings: string[];
}

export function loadCoordinatorSettings(env: Env): CoordinatorSettings {
  const common = loadCommonSettings(env);
  const e = parseEnv(
    {
      COORDINATOR_PORT: envInt(0, 65535, 8080),
      HTTP_BODY_LIMIT_BYTES: envInt(1024, 256 * 1024 * 1024, 16 * 1024 * 1024),
      RUN_RETAIN_S: envInt(60, 365 * DAY_S, 14 * DAY_S),
      RUN_DEFAULT_TEST_MS: envInt(1, 24 * 3600 * 1000, 5000),
      RUNS_TICK_MS: envInt(50, 60_000, 500),
    },
    env,
  );
  const templates = loadWorkerTemplates(common.configDir);
  return {
    ...common,
    port: e.COORDINATOR_PORT,
    security: loadSecuritySettings(env, common.configDir, 'COORDINATOR'),
    bodyLimitBytes: e.HTTP_BODY_LIMIT_BYTES,
    retention: loadRetention(env),
    runRetainS: e.RUN_RETAIN_S,
    runDefaultTestMs: e.RUN_DEFAULT_TEST_MS,
    runsTickMs: e.RUNS_TICK_MS,
    templates: templates.value,
    warnings: templates.warnings,
  };
}

export interface WorkerSettings extends CommonSettings {
  workerId: string;
  pool: string;
  retention: Retention;
  concurrency: number;
  template: WorkerTemplate;
  heartbeatMs: number;
  lockMs: number;
  stalledIntervalMs: number;
  /** Approximate cap (XADD MAXLEN ~) of the timings stream. */
  timingsMaxLen: number;
  /** Grace between SIGTERM and SIGKILL when a task's process tree is stopped. */
  killGraceMs: number;
  /** Drain and exit when stdin closes: set for workers a resource manager starts, so none outlives it. */
  exitWithParent: boolean;
  /** `auto` (a writable cgroup v2 when the host has one), `off`, or a cgroup v2 directory for task containment. */
  cgroup: string;
  /**
   * `WORKER_PORT`: when set, the worker serves `/health/live`, `/health/ready` and `/metrics` (for a worker run
   * on its own, say one per Kubernetes pod); workers a resource manager starts leave it unset.
   */
  httpPort: number | undefined;
  /** Who may reach that HTTP surface (only loaded when `WORKER_PORT` is set). */
  security: SecuritySettings | undefined;
  warnings: string[];
}

const WORKER_ID = /^[A-Za-z0-9_.-]{1,100}$/;

/** Worker settings from `--pool/--concurrency/--id` (which win) and `WORKER_*` variables. */
export function loadWorkerSettings(argv: readonly string[], env: Env): WorkerSettings {
  let flags: { pool?: string; concurrency?: string; id?: string };
  try {
    flags = parseArgs({
      args: [...argv],
      options: { pool: { type: 'string' }, concurrency: { type: 'string' }, id: { type: 'string' } },
      strict: true,
    }).values;
  } catch (err) {
    throw new ConfigError('command line', [
      { field: 'arguments', reason: `${(err as Error).message}; usage: --pool <name> [--concurrency <n>] [--id <worker id>]` },
    ]);
  }
  const common = loadCommonSettings(env);
  const e = parseEnv(
    {
      WORKER_POOL: envString(''),
      WORKER_CONCURRENCY: envOptionalInt(1, 256),
      WORKER_ID: envString(''),
      WORKER_HEARTBEAT_MS: envInt(50, 60_000, 1000),
      WORKER_LOCK_MS: envInt(1000, 3_600_000, 10_000),
      WORKER_STALLED_INTERVAL_MS: envInt(500, 3_600_000, 5000),
      WORKER_KILL_GRACE_MS: envInt(0, 600_000, 2000),
      TIMINGS_MAXLEN: envInt(100, 100_000_000, 100_000),
      WORKER_EXIT_WITH_PARENT: z.enum(['0', '1', ''], { error: 'must be 1 or 0' }).default(''),
      WORKER_PORT: envOptionalInt(0, 65535),
      WORKER_CGROUP: envString('auto').refine((v) => v === 'auto' || v === 'off' || v.startsWith('/'), {
        error: 'must be auto, off or an absolute cgroup v2 directory',
      }),
    },
    {
      ...env,
      WORKER_POOL: flags.pool ?? env.WORKER_POOL,
      WORKER_CONCURRENCY: flags.concurrency ?? env.WORKER_CONCURRENCY,
      WORKER_ID: flags.id ?? env.WORKER_ID,
    },
  );
  const templates = loadWorkerTemplates(common.configDir);
  const pools = templates.value.map((t) => t.pool);
  if (e.WORKER_POOL === '')
    throw new ConfigError('command line', [{ field: '--pool', reason: `is required (or WORKER_POOL); pools: ${pools.join(', ')}` }]);
  const template = templates.value.find((t) => t.pool === e.WORKER_POOL);
  if (!template)
    throw new ConfigError('command line', [
      { field: '--pool', reason: `unknown pool "${e.WORKER_POOL}"; worker_templates.json defines: ${pools.join(', ')}` },
    ]);
  const workerId =
    e.WORKER_ID ||
    `${hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .slice(0, 60)}-${process.pid}-${randomBytes(2).toString('hex')}`;
  if (!WORKER_ID.test(workerId)) throw new ConfigError('command line', [{ field: '--id', reason: 'must be 1-100 letters, digits, _ . or -' }]);
  return {
    ...common,
    workerId,
    pool: template.pool,
    retention: loadRetention(env),
    concurrency: e.WORKER_CONCURRENCY ?? template.concurrency,
    template,
    heartbeatMs: e.WORKER_HEARTBEAT_MS,
    lockMs: e.WORKER_LOCK_MS,
    stalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS,
    timingsMaxLen: e.TIMINGS_MAXLEN,
    killGraceMs: e.WORKER_KILL_GRACE_MS,
    exitWithParent: e.WORKER_EXIT_WITH_PARENT === '1',
    cgroup: e.WORKER_CGROUP,
    httpPort: e.WORKER_PORT,
    security: e.WORKER_PORT === undefined ? undefined : loadSecuritySettings(env, common.configDir, 'WORKER'),
    warnings: templates.warnings,
  };
}

export interface ResourceManagerSettings extends CommonSettings {
  port: number;
  security: SecuritySettings;
  /** This resource manager's id: its lease value and the prefix of its workers' ids. */
  managerId: string;
  templates: WorkerTemplate[];
  config: ResourceManagerConfig;
  /** The worker app the supervisor starts (the built `dist/apps/worker/src/main.js` unless WORKER_ENTRY says otherwise). */
  workerEntry: string;
  /** Environment handed to the workers it starts (this process's, plus the fleet's settings). */
  workerEnv: Record<string, string>;
  /** This host as it offers itself to the fleet: its slots, and the pools it may run with a limit each. */
  host: { slots: number; pools: Record<string, number> };
  warnings: string[];
}

/**
 * `RM_HOST_POOLS`: `cpu=4,gpu` (a pool's limit on this host; a bare name: the pool's max_workers); empty:
 * every pool the manager scales, each up to its max_workers.
 */
function parseHostPools(raw: string, config: ResourceManagerConfig): Record<string, number> {
  const managed = config.pools.filter((p) => p.managed);
  if (raw.trim() === '') return Object.fromEntries(managed.map((p) => [p.pool, p.policy.maxWorkers]));
  const out: Record<string, number> = {};
  for (const item of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [name, limit] = item.split('=');
    const pool = managed.find((p) => p.pool === name);
    if (!pool) {
      throw new ConfigError('environment', [
        { field: 'RM_HOST_POOLS', reason: `"${name}" is not a pool this manager scales (pools: ${managed.map((p) => p.pool).join(', ')})` },
      ]);
    }
    const n = limit === undefined ? pool.policy.maxWorkers : Number(limit);
    if (!Number.isInteger(n) || n < 0 || n > 10_000) {
      throw new ConfigError('environment', [{ field: 'RM_HOST_POOLS', reason: `${name}: the limit must be an integer from 0 to 10000` }]);
    }
    out[pool.pool] = n;
  }
  return out;
}

export function loadResourceManagerSettings(env: Env): ResourceManagerSettings {
  const common = loadCommonSettings(env);
  const e = parseEnv(
    {
      RESOURCE_MANAGER_PORT: envInt(0, 65535, 8081),
      RESOURCE_MANAGER_ID: envString(''),
      RM_HOST_SLOTS: envInt(1, 65_536, availableParallelism()),
      RM_HOST_POOLS: envString(''),
      WORKER_ENTRY: envString(join(repoRoot(), 'dist', 'apps', 'worker', 'src', 'main.js')),
    },
    env,
  );
  const templates = loadWorkerTemplates(common.configDir);
  const config = loadResourceManagerConfig(common.configDir, templates.value);
  const managerId =
    e.RESOURCE_MANAGER_ID ||
    `rm-${hostname()
      .replace(/[^A-Za-z0-9_-]/g, '-')
      .slice(0, 40)}-${process.pid}`;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(managerId)) {
    throw new ConfigError('environment', [{ field: 'RESOURCE_MANAGER_ID', reason: 'must be 1-64 letters, digits, _ or -' }]);
  }
  const inherited = Object.fromEntries(Object.entries(env).filter((kv): kv is [string, string] => kv[1] !== undefined));
  return {
    ...common,
    port: e.RESOURCE_MANAGER_PORT,
    security: loadSecuritySettings(env, common.configDir, 'RESOURCE_MANAGER'),
    managerId,
    templates: templates.value,
    config: config.value,
    workerEntry: e.WORKER_ENTRY,
    workerEnv: { ...inherited, REDIS_URL: common.redisUrl, FLEET_PREFIX: common.prefix, FLEET_SPREAD: common.spread, CONFIG_DIR: common.configDir },
    host: { slots: e.RM_HOST_SLOTS, pools: parseHostPools(e.RM_HOST_POOLS, config.value) },
    warnings: [...templates.warnings, ...config.warnings],
  };
}

/** Where the `fleet` command finds the apps' APIs, and the client token it sends (`FLEET_TOKEN`). */
export function loadFleetCliSettings(env: Env): {
  resourceManagerUrl: string;
  trendAnalyzerUrl: string;
  coordinatorUrl: string;
  token: string | undefined;
} {
  const e = parseEnv(
    {
      RESOURCE_MANAGER_PORT: envInt(1, 65535, 8081),
      RESOURCE_MANAGER_URL: envString(''),
      TREND_ANALYZER_PORT: envInt(1, 65535, 8082),
      TREND_ANALYZER_URL: envString(''),
      COORDINATOR_PORT: envInt(1, 65535, 8080),
      COORDINATOR_URL: envString(''),
      FLEET_TOKEN: envString(''),
    },
    env,
  );
  const url = (explicit: string, port: number) => (explicit || `http://127.0.0.1:${port}`).replace(/\/+$/, '');
  return {
    resourceManagerUrl: url(e.RESOURCE_MANAGER_URL, e.RESOURCE_MANAGER_PORT),
    trendAnalyzerUrl: url(e.TREND_ANALYZER_URL, e.TREND_ANALYZER_PORT),
    coordinatorUrl: url(e.COORDINATOR_URL, e.COORDINATOR_PORT),
    token: e.FLEET_TOKEN || undefined,
  };
}

export interface AnalyzerSettings extends CommonSettings {
  port: number;
  security: SecuritySettings;
  /** Consumer name in the timings stream's consumer group. */
  analyzerId: string;
  /** Readiness fails while more timing events than this wait unread by the analyzers' group. */
  readyMaxLag: number;
  config: AnalyzerConfig;
  warnings: string[];
}

export function loadAnalyzerSettings(env: Env): AnalyzerSettings {
  const common = loadCommonSettings(env);
  const e = parseEnv(
    {
      TREND_ANALYZER_PORT: envInt(0, 65535, 8082),
      TREND_ANALYZER_ID: envString(''),
      TREND_ANALYZER_READY_MAX_LAG: envInt(0, 1_000_000_000, 100_000),
    },
    env,
  );
  const config = loadAnalyzerConfig(common.configDir);
  return {
    ...common,
    port: e.TREND_ANALYZER_PORT,
    security: loadSecuritySettings(env, common.configDir, 'TREND_ANALYZER'),
    analyzerId:
      e.TREND_ANALYZER_ID ||
      `ta-${hostname()
        .replace(/[^A-Za-z0-9_-]/g, '-')
        .slice(0, 40)}-${process.pid}`,
    readyMaxLag: e.TREND_ANALYZER_READY_MAX_LAG,
    config: config.value,
    warnings: config.warnings,
  };
}

export interface DashboardSettings extends CommonSettings {
  port: number;
  security: SecuritySettings;
  /** Where the page's requests are forwarded: each app's API, as the `fleet` command finds them. */
  upstreams: { coordinator: string; 'resource-manager': string; 'trend-analyzer': string };
  warnings: string[];
}

/**
 * The dashboard: `DASHBOARD_PORT` (8083) on `DASHBOARD_HOST` or `HOST` (127.0.0.1), forwarding to
 * COORDINATOR_URL, RESOURCE_MANAGER_URL and TREND_ANALYZER_URL (or their ports on 127.0.0.1). It holds no token
 * of its own: the browser's token goes through to the apps, which authorize every call.
 */
export function loadDashboardSettings(env: Env): DashboardSettings {
  const common = loadCommonSettings(env);
  const e = parseEnv({ DASHBOARD_PORT: envInt(0, 65535, 8083) }, env);
  const apps = loadFleetCliSettings(env);
  return {
    ...common,
    port: e.DASHBOARD_PORT,
    security: loadSecuritySettings(env, common.configDir, 'DASHBOARD'),
    upstreams: { coordinator: apps.coordinatorUrl, 'resource-manager': apps.resourceManagerUrl, 'trend-analyzer': apps.trendAnalyzerUrl },
    warnings: [],
  };
}
