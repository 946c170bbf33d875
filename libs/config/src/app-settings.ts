import { type Env, envInt, envString, parseEnv } from './env.js';

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

/** Where the `fleet` command (and the dashboard) finds the apps' APIs, and the client token it sends (`FLEET_TOKEN`). */
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
