import { hostname, tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { WorkerTemplate } from '@fleet/contracts';
import {
  type CommonSettings,
  ConfigError,
  type Env,
  envInt,
  envOptionalInt,
  envString,
  loadCommonSettings,
  loadRetention,
  loadSecuritySettings,
  loadWorkerTemplates,
  parseEnv,
  type Retention,
  type SecuritySettings,
} from '@fleet/config';

/** Injection token of the worker's `WorkerSettings` (loaded and validated once, in `main`). */
export const WORKER_SETTINGS = Symbol('WORKER_SETTINGS');

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
  /**
   * `WORKER_STANDBY=1` (a resource manager's warm spare): load everything, then wait for a `go` line on stdin
   * before connecting and taking work; exit when stdin closes first.
   */
  standby: boolean;
  /** `auto` (a writable cgroup v2 when the host has one), `off`, or a cgroup v2 directory for task containment. */
  cgroup: string;
  /** `WORKER_LAUNCHER`: `auto` starts test and benchmark commands through a launcher (a Python's posix_spawn) when one can run; `off` spawns them. */
  launcher: 'auto' | 'off';
  /**
   * `WORKER_PORT`: when set, the worker serves `/health/live`, `/health/ready` and `/metrics` (for a worker run
   * on its own, say one per Kubernetes pod); workers a resource manager starts leave it unset.
   */
  httpPort: number | undefined;
  /** Who may reach that HTTP surface (only loaded when `WORKER_PORT` is set). */
  security: SecuritySettings | undefined;
  /** The host's source cache (mirrors, checkouts, setup records), shared by every worker on the host. */
  sourceDir: string;
  /** What the checkouts may take on disk before the least recently used are evicted. */
  sourceCacheBytes: number;
  /** A fetch of one commit that takes longer is stopped, and the files that needed it end as `error`. */
  sourceFetchTimeoutMs: number;
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
      WORKER_LAUNCHER: z.enum(['auto', 'off'], { error: 'must be auto or off' }).default('auto'),
      WORKER_SOURCE_DIR: envString(join(tmpdir(), 'fleet-sources')).refine(isAbsolute, { error: 'must be an absolute directory' }),
      WORKER_SOURCE_CACHE_BYTES: envInt(0, Number.MAX_SAFE_INTEGER, 10 * 1024 ** 3),
      WORKER_SOURCE_FETCH_TIMEOUT_MS: envInt(100, 24 * 3_600_000, 300_000),
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
    standby: env.WORKER_STANDBY === '1',
    cgroup: e.WORKER_CGROUP,
    launcher: e.WORKER_LAUNCHER,
    httpPort: e.WORKER_PORT,
    security: e.WORKER_PORT === undefined ? undefined : loadSecuritySettings(env, common.configDir, 'WORKER'),
    sourceDir: e.WORKER_SOURCE_DIR,
    sourceCacheBytes: e.WORKER_SOURCE_CACHE_BYTES,
    sourceFetchTimeoutMs: e.WORKER_SOURCE_FETCH_TIMEOUT_MS,
    warnings: templates.warnings,
  };
}
