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

  it('share the pool by quotas, never run more than max_workers between them, and the survivor takes over the share of one that dies', async () => {
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
    // Demand stays above three workers' worth until the test has seen what it waits for, however fast or slow
    // the machine runs the tasks: each poll tops the backlog up to 40 waiting tasks.
    let added = 0;
    const keepBusy = async () => {
      const { waiting = 0, prioritized = 0 } = await queue.queue.getJobCounts('waiting', 'prioritized');
      const more = Math.max(0, 40 - waiting - prioritized);
      if (more > 0)
        await queue.add(...Array.from({ length: more }, (_, i) => ({ type: 'synthetic', name: `s${added + i}`, config: { duration_ms: 100 } })));
      added += more;
    };
    await waitFor(async () => (await keepBusy(), await sample()) === 3, { what: 'the pool at max_workers (3)', timeoutMs: 20_000, intervalMs: 50 });
    const views = [await a.pool('cpu'), await b.pool('cpu')];
    // One plans (holds the lease), both run workers: the plan gives each host a share, 3 in all.
    expect(views.map((v) => v.acting).sort()).toEqual([false, true]);
    const [leader, other] = views[0]?.acting ? [a, b] : [b, a];
    const plan = (await leader.pool('cpu')).quotas;
    expect(Object.keys(plan).sort()).toEqual(['rm-a', 'rm-b']);
    expect(Object.values(plan).reduce((s, n) => s + n, 0)).toBe(3);
    expect(Object.values(plan).every((n) => n >= 1)).toBe(true);
    const hosts = (await leader.http.get('/hosts').expect(200)).body as { hosts: Array<{ id: string; holds_lease: boolean }>; lease_holder: string };
    expect(hosts.hosts.map((h) => h.id).sort()).toEqual(['rm-a', 'rm-b']);
    expect(hosts.lease_holder).toBe(leader === a ? 'rm-a' : 'rm-b');

    // The planner dies: its workers see their parent go and drain; the other takes the lease and the share.
    // Read while demand is kept up: once the backlog drains, the leader may already be scaling its share in.
    const leaderWorkers = await waitFor(
      async () => {
        await keepBusy();
        const pids = (await leader.pool('cpu')).workers.filter((w) => w.started_by_this_manager && w.status !== 'draining').map((w) => w.pid);
        return pids.length > 0 ? pids : undefined;
      },
      { what: 'the leader to run workers of its own', timeoutMs: 20_000, intervalMs: 50 },
    );
    leader.child.kill('SIGKILL');
    await leader.exited;
    await waitFor(() => leaderWorkers.every((pid) => !isAlive(pid)), { what: 'the dead manager’s workers to exit', timeoutMs: 20_000 });
    await waitFor(
      async () => {
        await keepBusy();
        await sample();
        const v = await other.pool('cpu');
        return v.acting && v.quota === 3 && v.ready === 3;
      },
      { what: 'the survivor to hold the lease and the whole share (3)', timeoutMs: 30_000, intervalMs: 50 },
    );
    await waitFor(
      async () => {
        await sample();
        return (await queue.queue.getJobCounts('completed')).completed === added;
      },
      { what: 'all tasks done', timeoutMs: 60_000, intervalMs: 100 },
    );
    expect(peak).toBeLessThanOrEqual(3);
  });
});
