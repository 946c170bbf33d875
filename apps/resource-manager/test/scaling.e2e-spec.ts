import { decodeTimingEvent } from '@fleet/contracts';
import { cpuTemplate, isAlive, isolatedSuite, waitFor } from '@fleet/testing';
import { fastConfig, type ResourceManager, startResourceManager } from './rm-harness.js';

describe('the resource manager scales a pool with its queue', () => {
  const suite = isolatedSuite('scale', {
    'worker_templates.json': { cpu: cpuTemplate({ concurrency: 2 }), lazy: cpuTemplate({ concurrency: 2 }) },
    'resource_manager_config.json': fastConfig({
      pools: { lazy: { min_workers: 0, max_workers: 2, scale_down_cooldown: 1, scale_down_stabilization: 1 } },
    }),
  });
  let rm: ResourceManager;

  beforeAll(async () => {
    rm = await startResourceManager({ prefix: suite.prefix, configDir: suite.config.path });
    suite.onCleanup(() => rm.stop('SIGKILL'));
  });

  it('with min_workers 0 runs no worker while idle; its first task wakes the pool, which sleeps again after', async () => {
    const lazy = suite.queue('lazy');
    expect((await rm.pool('lazy')).running).toBe(0);
    const [id] = await lazy.add({ type: 'synthetic', name: 'wake up', config: { duration_ms: 10 } });
    await waitFor(async () => (await lazy.job(id))?.state === 'completed', {
      what: 'the first task to wake the pool and complete',
      timeoutMs: 20_000,
    });
    const decisions = (await rm.http.get('/decisions?pool=lazy').expect(200)).body.decisions as Array<{ from: number; to: number; reason: string }>;
    expect(decisions.at(-1)).toMatchObject({ from: 0, to: 1, reason: expect.stringMatching(/waking: 1 task/) });
    await waitFor(async () => (await rm.pool('lazy')).running === 0, { what: 'the idle pool to go back to zero', timeoutMs: 20_000 });
  });

  it('grows from min toward max under a spike of 300 tasks, runs each once, returns to min, and leaves no process when stopped', async () => {
    await waitFor(async () => (await rm.pool('cpu')).ready === 1, { what: 'min_workers (1) to be ready' });
    const ids = await suite
      .queue('cpu')
      .add(...Array.from({ length: 300 }, (_, i) => ({ type: 'synthetic', name: `spike ${i}`, config: { duration_ms: 60 } })));
    const pids = new Set<number>();
    let peak = 0;
    const observe = async () => {
      const p = await rm.pool('cpu');
      for (const w of p.workers) pids.add(w.pid);
      peak = Math.max(peak, p.running);
      expect(p.running).toBeLessThanOrEqual(4);
      return p;
    };
    await waitFor(async () => (await observe()).running === 4, { what: 'the pool to reach max_workers (4)', timeoutMs: 30_000, intervalMs: 100 });

    const completions = new Map<string, number>();
    await waitFor(
      async () => {
        await observe();
        completions.clear();
        for (const [, fields] of await suite.redis.xrange(suite.keys.timings, '-', '+')) {
          const r = decodeTimingEvent(fields);
          if (r.ok && r.event.outcome === 'completed' && r.event.pool === 'cpu')
            completions.set(r.event.task_id, (completions.get(r.event.task_id) ?? 0) + 1);
        }
        return completions.size === ids.length;
      },
      { what: 'all 300 tasks to complete', timeoutMs: 60_000, intervalMs: 200 },
    );
    expect([...completions.values()].every((n) => n === 1)).toBe(true);
    expect(peak).toBe(4);

    await waitFor(async () => (await observe()).running === 1, {
      what: 'the pool to return to min_workers after the cooldown',
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    const decisions = (await rm.http.get('/decisions?pool=cpu').expect(200)).body.decisions as Array<{
      from: number;
      to: number;
      reason: string;
      inputs: { waiting: number };
    }>;
    expect(decisions.some((d) => d.to > d.from && /demand \d+ \/ 4 per worker/.test(d.reason) && d.inputs.waiting > 0)).toBe(true);
    expect(decisions.some((d) => d.to < d.from)).toBe(true);

    expect(await rm.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(pids.size).toBeGreaterThanOrEqual(4);
    await waitFor(() => [...pids].every((pid) => !isAlive(pid)), { what: 'every worker process to be gone', timeoutMs: 5000 });
  });
});
