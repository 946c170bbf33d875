import request from 'supertest';
import { type AppProcess, FAST_WORKER_ENV, StopWaiting, TEST_REDIS_URL, freePort, startApp, waitFor } from '@fleet/testing';
import type { PoolView } from '../src/pools.service.js';

/** A resource manager as a real process from `dist`, with its HTTP API at `url`. */
export interface ResourceManager extends AppProcess {
  url: string;
  http: ReturnType<typeof request>;
  pool(name: string): Promise<PoolView>;
}

export async function startResourceManager(opts: {
  prefix: string;
  configDir: string;
  id?: string;
  env?: Record<string, string>;
}): Promise<ResourceManager> {
  const port = await freePort();
  const proc = startApp('resource-manager', [], {
    REDIS_URL: TEST_REDIS_URL,
    FLEET_PREFIX: opts.prefix,
    CONFIG_DIR: opts.configDir,
    RESOURCE_MANAGER_PORT: String(port),
    ...(opts.id && { RESOURCE_MANAGER_ID: opts.id }),
    ...FAST_WORKER_ENV,
    ...opts.env,
  });
  const url = `http://127.0.0.1:${port}`;
  const http = request(url);
  await waitFor(
    async () => {
      if (proc.child.exitCode !== null) throw new StopWaiting(`resource manager exited: ${proc.output()}`);
      return (await fetch(`${url}/health`).catch(() => undefined))?.ok;
    },
    { what: 'the resource manager to listen', timeoutMs: 20_000, intervalMs: 100 },
  );
  return {
    ...proc,
    url,
    http,
    pool: async (name) => (await http.get(`/pools/${name}`).expect(200)).body as PoolView,
  };
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
