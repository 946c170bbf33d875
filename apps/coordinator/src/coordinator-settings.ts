import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { WorkerTemplate } from '@fleet/contracts';
import {
  type CommonSettings,
  type Env,
  envInt,
  envString,
  loadCommonSettings,
  loadRetention,
  loadSecuritySettings,
  loadWorkerTemplates,
  parseEnv,
  type Retention,
  type SecuritySettings,
} from '@fleet/config';

/** Injection token of the coordinator's `CoordinatorSettings` (loaded and validated once, in `main`). */
export const COORDINATOR_SETTINGS = Symbol('COORDINATOR_SETTINGS');

const DAY_S = 24 * 60 * 60;

export interface CoordinatorSettings extends CommonSettings {
  port: number;
  security: SecuritySettings;
  bodyLimitBytes: number;
  retention: Retention;
  /** How long a run (its tasks' results, attempts and cases) stays readable. */
  runRetainS: number;
  /** A run older than this has what has not started cancelled (so no run waits for ever). */
  runMaxAgeS: number;
  /** How many finished runs are kept at most (the oldest finished go first). */
  runRetainCount: number;
  /** How many tests the flaky index keeps at most (the least recently seen go first). */
  flakyMaxTests: number;
  /** A test file's expected duration when its history has none. */
  runDefaultTestMs: number;
  /** How often runs are looked after (dependencies released, finished runs finalized). */
  runsTickMs: number;
  templates: WorkerTemplate[];
  /** The coordinator's own mirrors, where it resolves a run's tests against the commit's tree. */
  sourceDir: string;
  /** Resolving a branch, or fetching a commit to list its tree, is stopped after this long (the request fails). */
  sourceFetchTimeoutMs: number;
  /** A CI node's hold on a file it runs: renewed while it runs; a node gone for this long gives the file back. */
  ciLeaseMs: number;
  /** A build none of whose nodes has asked for work or renewed a file for this long ends as `error`. */
  ciNodesGoneMs: number;
  /** The timing stream's length, kept near this (the outcomes CI nodes report are written by the coordinator). */
  timingsMaxLen: number;
  warnings: string[];
}

export function loadCoordinatorSettings(env: Env): CoordinatorSettings {
  const common = loadCommonSettings(env);
  const e = parseEnv(
    {
      COORDINATOR_PORT: envInt(0, 65535, 8080),
      HTTP_BODY_LIMIT_BYTES: envInt(1024, 256 * 1024 * 1024, 16 * 1024 * 1024),
      RUN_RETAIN_S: envInt(60, 365 * DAY_S, 14 * DAY_S),
      RUN_RETAIN_COUNT: envInt(1, 10_000_000, 10_000),
      RUN_MAX_AGE_S: envInt(1, 365 * DAY_S, DAY_S),
      FLAKY_MAX_TESTS: envInt(1, 10_000_000, 20_000),
      RUN_DEFAULT_TEST_MS: envInt(1, 24 * 3600 * 1000, 5000),
      RUNS_TICK_MS: envInt(50, 3_600_000, 500),
      COORDINATOR_SOURCE_DIR: envString(join(tmpdir(), 'fleet-coordinator-sources')).refine(isAbsolute, { error: 'must be an absolute directory' }),
      COORDINATOR_SOURCE_FETCH_TIMEOUT_MS: envInt(100, 3_600_000, 120_000),
      CI_LEASE_MS: envInt(1000, 3_600_000, 30_000),
      CI_NODES_GONE_MS: envInt(1000, 24 * 3_600_000, 300_000),
      TIMINGS_MAXLEN: envInt(100, 100_000_000, 100_000),
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
    runRetainCount: e.RUN_RETAIN_COUNT,
    runMaxAgeS: e.RUN_MAX_AGE_S,
    flakyMaxTests: e.FLAKY_MAX_TESTS,
    runDefaultTestMs: e.RUN_DEFAULT_TEST_MS,
    runsTickMs: e.RUNS_TICK_MS,
    templates: templates.value,
    sourceDir: e.COORDINATOR_SOURCE_DIR,
    sourceFetchTimeoutMs: e.COORDINATOR_SOURCE_FETCH_TIMEOUT_MS,
    ciLeaseMs: e.CI_LEASE_MS,
    ciNodesGoneMs: e.CI_NODES_GONE_MS,
    timingsMaxLen: e.TIMINGS_MAXLEN,
    warnings: templates.warnings,
  };
}
