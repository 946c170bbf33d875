import { availableParallelism, hostname } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerTemplate } from '@fleet/contracts';
import {
  type CommonSettings,
  ConfigError,
  type Env,
  envInt,
  envString,
  loadCommonSettings,
  loadResourceManagerConfig,
  loadSecuritySettings,
  loadWorkerTemplates,
  parseEnv,
  repoRoot,
  type ResourceManagerConfig,
  type SecuritySettings,
} from '@fleet/config';

/** Injection token of the resource manager's `ResourceManagerSettings` (loaded once, in `main`). */
export const RM_SETTINGS = Symbol('RM_SETTINGS');

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
  /** A ready worker whose process lives but whose heartbeat has been gone this long (stopped, hung) is killed and replaced. */
  silentWorkerMs: number;
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

/** The built worker: its bundle when `npm run build` made one (it starts in about half the time), else the compiled app. */
export function defaultWorkerEntry(dist = join(repoRoot(), 'dist', 'apps', 'worker', 'src')): string {
  const bundle = join(dist, 'main.bundle.mjs');
  return existsSync(bundle) ? bundle : join(dist, 'main.js');
}

export function loadResourceManagerSettings(env: Env): ResourceManagerSettings {
  const common = loadCommonSettings(env);
  const e = parseEnv(
    {
      RESOURCE_MANAGER_PORT: envInt(0, 65535, 8081),
      RESOURCE_MANAGER_ID: envString(''),
      RM_HOST_SLOTS: envInt(1, 65_536, availableParallelism()),
      RM_HOST_POOLS: envString(''),
      WORKER_ENTRY: envString(defaultWorkerEntry()),
      RM_SILENT_WORKER_S: envInt(1, 86_400, 30),
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
    silentWorkerMs: e.RM_SILENT_WORKER_S * 1000,
    warnings: [...templates.warnings, ...config.warnings],
  };
}
