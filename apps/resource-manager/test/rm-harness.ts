import { FAST_WORKER_ENV, type Service, startService, TEST_REDIS_URL } from '@fleet/testing';
import type { PoolView } from '../src/pools.service.js';

/** A resource manager as a real process from `dist`, with its HTTP API at `url`. */
export interface ResourceManager extends Service {
  pool(name: string): Promise<PoolView>;
}

export async function startResourceManager(opts: {
  prefix: string;
  configDir: string;
  id?: string;
  env?: Record<string, string>;
}): Promise<ResourceManager> {
  const s = await startService('resource-manager', {
    REDIS_URL: TEST_REDIS_URL,
    FLEET_PREFIX: opts.prefix,
    CONFIG_DIR: opts.configDir,
    ...(opts.id && { RESOURCE_MANAGER_ID: opts.id }),
    ...FAST_WORKER_ENV,
    ...opts.env,
  });
  return { ...s, pool: async (name) => (await s.http.get(`/pools/${name}`).expect(200)).body as PoolView };
}

/** A fast resource_manager_config.json for tests: ticks every 300 ms, short cooldowns. */
export function fastConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    min_workers: 1,
    max_workers: 4,
    polling_interval: 0.3,
    scaling_strategy: 'ADAPTIVE',
    target_backlog_per_worker: 4,
    scale_up_cooldown: 0.5,
    scale_down_cooldown: 2,
    scale_down_stabilization: 2,
    max_step_up: 2,
    max_step_down: 2,
    stop_grace_period: 10,
    lease_ttl: 2,
    deprovision_on_stop: true,
    ...overrides,
  };
}
