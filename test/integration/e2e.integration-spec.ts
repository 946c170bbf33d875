import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { decodeTimingEvent } from '@fleet/contracts';
import { countMatching, deleteMatching, FleetKeys } from '@fleet/redis';
import {
  FAST_WORKER_ENV,
  isAlive,
  makeConfigDir,
  type Service,
  startService,
  TEST_REDIS_URL,
  testRedis,
  uniquePrefix,
  waitFor,
} from '@fleet/testing';
import { systemConfigFiles } from './system-fixtures.js';

/** Prints each step as it happens with `--verbose` (FLEET_VERBOSE=1). */
const step = (msg: string) => {
  if (process.env.FLEET_VERBOSE === '1') process.stdout.write(`  [e2e] ${new Date().toISOString().slice(11, 23)} ${msg}\n`);
};

async function started(app: string, env: Record<string, string>): Promise<Service> {
  const s = await startService(app, env);
  step(`${app} is up at ${s.url} (pid ${s.pid})`);
  return s;
}

describe('the whole fleet, end to end, as the seed guide describes (real processes, real Redis)', () => {
  it('runs submission, execution, scaling up and down, metric analysis with a regression, and cleans up', async () => {
    // 1. Set-up: a temp folder with the four config files and a private key prefix.
    const prefix = uniquePrefix('system');
    const keys = new FleetKeys(prefix);
    const given = process.env.INTEGRATION_CONFIG_DIR;
    const dir = makeConfigDir(systemConfigFiles());
    if (given)
      for (const f of ['resource_manager_config.json', 'performance_analyzer_config.json', 'worker_templates.json', 'test_tasks.json'])
        if (existsSync(join(given, f))) dir.write(f, readFileSync(join(given, f), 'utf8'));
    step(`config in ${dir.path}${given ? ` (files from ${given})` : ''}, key prefix ${prefix}`);
    const redis: Redis = testRedis();
    const env = { REDIS_URL: TEST_REDIS_URL, FLEET_PREFIX: prefix, CONFIG_DIR: dir.path, ...FAST_WORKER_ENV };
    const services: Service[] = [];
    const workerPids = new Set<number>();
    try {
      // 2. Start the coordinator, the resource manager (it starts the workers) and the trend analyzer.
      const coordinator = await started('coordinator', env);
      services.push(coordinator);
      const rm = await started('resource-manager', env);
      services.push(rm);
      const analyzer = await started('trend-analyzer', env);
      services.push(analyzer);
      let peak = 0;
      const pool = async () => {
        const p = (await rm.http.get('/pools/cpu-worker').expect(200)).body as { running: number; ready: number; workers: Array<{ pid: number }> };
        for (const w of p.workers) workerPids.add(w.pid);
        peak = Math.max(peak, p.running);
        return p;
      };
      await waitFor(async () => (await pool()).ready === 1, { what: 'min_workers (1) ready' });
      step('the resource manager has started min_workers (1)');

      const submitted: string[] = [];
      const expectedFailures = new Set<string>();
      const submit = async (body: object) => {
        const ids = (await coordinator.http.post('/tasks/batch').send(body).expect(201)).body.ids as string[];
        submitted.push(...ids);
        return ids;
      };
      const finished = async (ids: string[], timeoutMs = 60_000) => {
        let views: Array<{
          id: string;
          state: string;
          worker_id: string;
          result: { outcome: string; metrics: Record<string, number> } | null;
          error: { reason: string; exit_code?: number } | null;
          labels: Record<string, string>;
        }> = [];
        await waitFor(
          async () => {
            views = await Promise.all(ids.map(async (id) => (await coordinator.http.get(`/tasks/${id}`).expect(200)).body));
            return views.every((v) => v.state === 'completed' || v.state === 'failed');
          },
          { what: `${ids.length} task(s) to finish`, timeoutMs, intervalMs: 200 },
        );
        return views;
      };

      // 3-4. Submit test_tasks.json through the API; each runs on the matching pool, results readable.
      const seed = await submit(JSON.parse(readFileSync(join(dir.path, 'test_tasks.json'), 'utf8')));
      step(`submitted test_tasks.json: ${seed.length} tasks`);
      const seedViews = await finished(seed);
      for (const v of seedViews) if (v.labels.expect === 'failure') expectedFailures.add(v.id);
      expect(seedViews.map((v) => v.state)).toEqual(['completed', 'completed', 'failed']);
      expect(seedViews[0]?.result?.outcome).toBe('passed');
      expect(seedViews[1]?.result?.metrics).toMatchObject({ latency_ms: 12.5 });
      expect(seedViews[2]?.error).toMatchObject({ reason: 'test_failed', exit_code: 1 });
      step('seed tasks: the CPU test passed, the benchmark reported its metrics, the failing test failed with exit code 1');

      // 5a. Normal load: one task at a time keeps the fleet at its minimum.
      let peakNormal = 0;
      for (let i = 0; i < 8; i++) {
        const [id] = await submit({
          tasks: [{ type: 'synthetic', name: `normal ${i}`, labels: { model_name: 'normal' }, config: { duration_ms: 30 } }],
        });
        await finished([id]);
        peakNormal = Math.max(peakNormal, (await pool()).running);
      }
      expect(peakNormal).toBe(1);
      step('normal load: 8 tasks one at a time, the fleet stayed at 1 worker');

      // 5b. High load: a burst scales up within a bounded number of ticks. The burst also lays the
      //     baseline of the regression injected next (group "reg").
      const burstAt = Date.now();
      const burst = (group: string, n: number, ms: number) =>
        Array.from({ length: n }, (_, i) => ({
          type: 'synthetic',
          name: `${group} ${i}`,
          labels: { model_name: group },
          config: { duration_ms: ms },
        }));
      // 200 ms sleeps: long enough that a busy machine's timer delays stay a small share of each (see step 6).
      const phase1 = await submit({ tasks: [...burst('reg', 60, 200), ...burst('steady', 60, 200)] });
      step('high load: a burst of 120 tasks');
      // How soon it scales is the machine's speed (the bench measures the reaction); that it scales is the policy.
      const scaledAt = await waitFor(async () => ((await pool()).running > 1 ? Date.now() : undefined), {
        what: 'a scale-up',
        timeoutMs: 60_000,
        intervalMs: 50,
      });
      step(`scaled up ${scaledAt - burstAt} ms after the burst`);
      await finished(phase1);

      // 6. Inject a regression: the same group's tasks now take twice as long. (Sleeps stretch when the
      //    machine is busy, by some milliseconds each; a doubling stays far above the 1.5 alert ratio however
      //    busy, and the unchanged group stays far below it. Finer effects are the analyzer suite's job.)
      const phase2 = await submit({ tasks: [...burst('reg', 40, 400), ...burst('steady', 40, 200)] });
      step('injected a regression: group "reg" 200 ms → 400 ms, group "steady" unchanged');
      await finished(phase2);

      // 5c. Low load afterwards: back to the minimum once the cooldown has passed.
      await waitFor(async () => (await pool()).running === 1, {
        what: 'the fleet back at 1 worker after the cooldown',
        timeoutMs: 60_000,
        intervalMs: 200,
      });
      expect(peak).toBeLessThanOrEqual(3);
      const decisions = (await rm.http.get('/decisions?pool=cpu-worker').expect(200)).body.decisions as Array<{ from: number; to: number }>;
      expect(decisions.some((d) => d.to > d.from && d.from >= 1)).toBe(true);
      expect(decisions.some((d) => d.to < d.from)).toBe(true);
      step(
        `low load: back to 1 worker; decisions: ${decisions
          .map((d) => `${d.from}→${d.to}`)
          .reverse()
          .join(', ')}`,
      );

      // Accounting: every submitted task completed, or failed as expected; none lost, none run twice.
      const all = await finished(submitted);
      const completed = all.filter((v) => v.state === 'completed').length;
      const failedAsExpected = all.filter((v) => v.state === 'failed' && expectedFailures.has(v.id)).length;
      expect(completed + failedAsExpected).toBe(submitted.length);
      step(`accounting: ${submitted.length} submitted = ${completed} completed + ${failedAsExpected} failed as expected`);

      // 7. Metric analysis: a timing for every completed task, counted once; the regression's alert.
      const streamLength = await redis.xlen(keys.timings);
      await waitFor(async () => (await analyzer.http.get('/metrics/summary').expect(200)).body.events.processed === streamLength, {
        what: 'the analyzer to process every timing',
      });
      const completions = new Map<string, number>();
      for (const [, f] of await redis.xrange(keys.timings, '-', '+')) {
        const r = decodeTimingEvent(f);
        if (r.ok && r.event.outcome === 'completed') completions.set(r.event.task_id, (completions.get(r.event.task_id) ?? 0) + 1);
      }
      expect(completions.size).toBe(completed);
      expect([...completions.values()].every((n) => n === 1)).toBe(true);
      const alerts = await waitFor(
        async () => {
          const recent = (await analyzer.http.get('/alerts').expect(200)).body.recent as Array<{ event: string; metric: string; group: string }>;
          return recent.some((a) => a.event === 'raised') ? recent : undefined;
        },
        { what: 'the regression alert', timeoutMs: 60_000 },
      );
      expect(alerts.filter((a) => a.event === 'raised').map((a) => `${a.metric} ${a.group}`)).toEqual(['run_time_ms model_name=reg']);
      step(`analysis: ${streamLength} timings processed once each; alert raised for run_time_ms of group "reg" only`);
    } finally {
      // 8. Cleanup: every process stopped (checked by PID), no key left, the temp folder removed.
      for (const s of [...services].reverse()) await s.stop();
      await waitFor(() => [...services.map((s) => s.pid), ...workerPids].every((pid) => !isAlive(pid)), {
        what: 'every process to exit',
        timeoutMs: 20_000,
      });
      await deleteMatching(redis, keys.everything);
      expect(await countMatching(redis, keys.everything)).toBe(0);
      await redis.quit();
      dir.remove();
      expect(existsSync(dir.path)).toBe(false);
      step(`cleanup: ${services.length} services and ${workerPids.size} workers stopped, keys deleted, ${dir.path} removed`);
    }
  });
});
