import { expect } from '@jest/globals';
import { cpuTemplate, type Service, waitFor } from '@fleet/testing';

/** Config files for a small fleet with one LOCAL pool `cpu` (node tests, concurrency 2). */
export function faultConfigFiles(rm: Record<string, unknown> = {}, analyzer: Record<string, unknown> = {}): Record<string, object | string> {
  return {
    'worker_templates.json': { cpu: cpuTemplate({ concurrency: 2, runners: { test: { '.mjs': ['node', '{test_file}'] } } }) },
    'resource_manager_config.json': {
      min_workers: 2,
      max_workers: 3,
      polling_interval: 0.3,
      scaling_strategy: 'ADAPTIVE',
      target_backlog_per_worker: 50,
      scale_up_cooldown: 0.5,
      scale_down_cooldown: 60,
      scale_down_stabilization: 60,
      stop_grace_period: 10,
      lease_ttl: 3,
      ...rm,
    },
    'performance_analyzer_config.json': { polling_interval: 0.3, claim_idle_ms: 1000, metrics_grouping: ['pool'], ...analyzer },
  };
}

/** One bounded request: the status, or 'no answer' when none came within `ms`. */
export async function statusOf(url: string, init: RequestInit = {}, ms = 3000): Promise<number | 'no answer'> {
  try {
    return (await fetch(url, { ...init, signal: AbortSignal.timeout(ms) })).status;
  } catch {
    return 'no answer';
  }
}

export const jsonPost = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

export function syntheticBatch(n: number, config: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): { tasks: object[] } {
  return { tasks: Array.from({ length: n }, (_, i) => ({ type: 'synthetic', name: `t${i}`, config, ...extra })) };
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);

/**
 * Waits until the pool's queue has nothing waiting or running (polling its counts, as a client would), then
 * reads every task once; returns the tasks by state.
 */
export async function waitAllFinished(coordinator: Service, ids: readonly string[], timeoutMs = 60_000): Promise<Record<string, number>> {
  await waitFor(
    async () => {
      const pools = (await coordinator.http.get('/queues').expect(200)).body.pools as Array<{ counts: Record<string, number> }>;
      return pools.every((p) => (p.counts.waiting ?? 0) + (p.counts.prioritized ?? 0) + (p.counts.delayed ?? 0) + (p.counts.active ?? 0) === 0);
    },
    { what: `${ids.length} tasks to finish`, timeoutMs, intervalMs: 250 },
  );
  const states: string[] = [];
  for (const id of ids) states.push(((await coordinator.http.get(`/tasks/${id}`).expect(200)).body as { state: string }).state);
  expect(states.every((s) => FINAL.has(s))).toBe(true);
  const by: Record<string, number> = {};
  for (const s of states) by[s] = (by[s] ?? 0) + 1;
  return by;
}

/** Submits `n` synthetic tasks as one batch and waits until every one of them has completed; returns their ids. */
export async function submitAndComplete(coordinator: Service, n: number, config: Record<string, unknown> = {}): Promise<string[]> {
  const ids = (await coordinator.http.post('/tasks/batch').send(syntheticBatch(n, config)).expect(201)).body.ids as string[];
  expect(await waitAllFinished(coordinator, ids)).toEqual({ completed: n });
  return ids;
}
