import { WorkerRegistry } from '@fleet/redis';
import { cpuTemplate, isAlive, isolatedSuite, waitFor } from '@fleet/testing';
import { fastConfig, type ResourceManager, startResourceManager } from './rm-harness.js';

describe('two resource managers on one Redis', () => {
  const suite = isolatedSuite('two', {
    'worker_templates.json': { cpu: cpuTemplate({ concurrency: 1 }) },
    'resource_manager_config.json': fastConfig({ max_workers: 3 }),
  });
  const managers: ResourceManager[] = [];

  beforeAll(async () => {
    for (const id of ['rm-a', 'rm-b']) {
      const m = await startResourceManager({ prefix: suite.prefix, configDir: suite.config.path, id });
      suite.onCleanup(() => m.stop());
      managers.push(m);
    }
  });

  it('never run more than max_workers between them; one acts, the other takes over when it dies', async () => {
    const [a, b] = managers as [ResourceManager, ResourceManager];
    const queue = suite.queue('cpu');
    const registry = new WorkerRegistry(suite.redis, suite.keys);
    const live = async () => (await registry.list()).filter((w) => w.pool === 'cpu');
    let peak = 0;
    const sample = async () => {
      const n = (await live()).length;
      peak = Math.max(peak, n);
      return n;
    };
    await queue.add(...Array.from({ length: 150 }, (_, i) => ({ type: 'synthetic', name: `s${i}`, config: { duration_ms: 100 } })));
    await waitFor(async () => (await sample()) === 3, { what: 'the pool at max_workers (3)', timeoutMs: 20_000, intervalMs: 50 });
    const views = [await a.pool('cpu'), await b.pool('cpu')];
    expect(views.map((v) => v.acting).sort()).toEqual([false, true]);
    const [leader, standby] = views[0]?.acting ? [a, b] : [b, a];
    const leaderWorkers = (await leader.pool('cpu')).workers.map((w) => w.pid);
    expect((await live()).every((w) => w.id.startsWith(leader === a ? 'rm-a' : 'rm-b'))).toBe(true);

    leader.child.kill('SIGKILL');
    await leader.exited;
    // Its workers see their parent go and drain; the standby takes the lease when it expires.
    await waitFor(() => leaderWorkers.every((pid) => !isAlive(pid)), { what: 'the dead manager’s workers to exit', timeoutMs: 20_000 });
    await waitFor(
      async () => {
        await sample();
        const v = await standby.pool('cpu');
        return v.acting && v.ready >= 1;
      },
      { what: 'the standby to take over', timeoutMs: 20_000, intervalMs: 50 },
    );
    await waitFor(async () => (await queue.queue.getJobCounts('completed')).completed === 150, {
      what: 'all tasks done',
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    expect(peak).toBeLessThanOrEqual(3);
  });
});
