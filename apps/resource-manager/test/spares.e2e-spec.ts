import { cpuTemplate, isAlive, isolatedSuite, waitFor } from '@fleet/testing';
import { fastConfig, type ResourceManager, startResourceManager } from './rm-harness.js';

interface DecisionRecord {
  at: number;
  from: number;
  to: number;
  reason: string;
}

describe('warm spares: loaded processes that become workers when work comes, never counted as workers', () => {
  const suite = isolatedSuite('spares', {
    'worker_templates.json': { work: cpuTemplate({ concurrency: 1 }) },
    'resource_manager_config.json': fastConfig({
      min_workers: 0,
      max_workers: 3,
      scaling_strategy: 'DEMAND',
      warm_spares: 2,
      scale_down_stabilization: 2,
      worker_startup_buffer: 0.5,
    }),
  });
  let rm: ResourceManager;

  beforeAll(async () => {
    rm = await startResourceManager({ prefix: suite.prefix, configDir: suite.config.path });
    suite.onCleanup(() => rm.stop('SIGKILL'));
  });

  it('an idle pool keeps its spares and no worker; a burst makes them its first workers; they end with their manager', async () => {
    const idle = await waitFor(
      async () => {
        const v = await rm.pool('work');
        return v.spares.length === 2 ? v : undefined;
      },
      { what: 'two warm spares', timeoutMs: 30_000 },
    );
    expect([idle.running, idle.workers]).toEqual([0, []]);
    for (const s of idle.spares) expect(isAlive(s.pid)).toBe(true);

    const queue = suite.queue('work');
    const ids = await queue.add(...Array.from({ length: 6 }, (_, i) => ({ type: 'synthetic', name: `burst ${i}`, config: { duration_ms: 400 } })));
    // The spares become the pool's workers (same id, same process): nothing new had to load for them.
    let most = 0;
    await waitFor(
      async () => {
        const v = await rm.pool('work');
        most = Math.max(most, v.running);
        const workers = new Map(v.workers.map((w) => [w.id, w.pid]));
        return idle.spares.every((s) => workers.get(s.id) === s.pid) || undefined;
      },
      { what: 'the spares to become workers', timeoutMs: 30_000, intervalMs: 20 },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; pool: ${JSON.stringify(await rm.pool('work'))}`);
    });
    await waitFor(
      async () => {
        const v = await rm.pool('work');
        most = Math.max(most, v.running);
        return (await Promise.all(ids.map(async (id) => (await queue.job(id))?.state))).every((s) => s === 'completed');
      },
      { what: 'every task to complete', timeoutMs: 60_000 },
    );
    // Spares never count as workers: the pool never ran more than max_workers, spares beside.
    expect(most).toBeLessThanOrEqual(3);

    // Refilled once the burst's workers have started, then the manager dies: spares and workers go with it.
    const refilled = await waitFor(
      async () => {
        const v = await rm.pool('work');
        return v.spares.length === 2 && v.spares.every((s) => !idle.spares.some((o) => o.id === s.id)) ? v : undefined;
      },
      { what: 'two new spares', timeoutMs: 30_000 },
    );
    const pids = [...refilled.spares.map((s) => s.pid), ...refilled.workers.map((w) => w.pid)];
    await rm.stop('SIGKILL');
    await waitFor(() => pids.every((pid) => !isAlive(pid)), {
      what: `spares and workers (${pids.join(', ')}) to exit after their manager`,
      timeoutMs: 30_000,
    });
  });
});

describe('work arriving is seen at once, not at the next polling_interval', () => {
  // One tick at start, the next only after ten minutes: whatever happens sooner was set off by the arrivals.
  const POLL_S = 600;
  const suite = isolatedSuite('nudge', {
    'worker_templates.json': { slow: cpuTemplate({ concurrency: 1 }), quick: cpuTemplate({ concurrency: 1 }) },
    'resource_manager_config.json': fastConfig({
      min_workers: 0,
      max_workers: 2,
      polling_interval: POLL_S,
      lease_ttl: POLL_S * 3,
      warm_spares: 0,
      pools: { slow: { scaling_strategy: 'ADAPTIVE' }, quick: { scaling_strategy: 'DEMAND' } },
    }),
  });
  let rm: ResourceManager;
  let bootedAt: number;
  const decisions = async (pool: string) =>
    ((await rm.http.get(`/decisions?pool=${pool}`).expect(200)).body.decisions as DecisionRecord[]).sort((a, b) => a.at - b.at);

  beforeAll(async () => {
    rm = await startResourceManager({ prefix: suite.prefix, configDir: suite.config.path });
    suite.onCleanup(() => rm.stop('SIGKILL'));
    bootedAt = Date.now();
  });

  it('an empty pool of any strategy wakes when a task arrives', async () => {
    const [id] = await suite.queue('slow').add({ type: 'synthetic', name: 'wake', config: { duration_ms: 100 } });
    await waitFor(async () => (await suite.queue('slow').job(id))?.state === 'completed', { what: 'the task to run', timeoutMs: 60_000 });
    const [wake] = await decisions('slow');
    expect(wake).toMatchObject({ from: 0, to: 1, reason: expect.stringMatching(/^waking/) });
    expect((wake?.at ?? Infinity) - bootedAt).toBeLessThan(POLL_S * 1000);
  });

  it('a DEMAND pool grows with a burst while it is below max_workers', async () => {
    const queue = suite.queue('quick');
    const [first] = await queue.add({ type: 'synthetic', name: 'first', config: { duration_ms: 3000 } });
    await waitFor(async () => (await queue.job(first))?.state === 'active', { what: 'the first task to start', timeoutMs: 60_000 });
    // DEMAND starts no more workers than would finish the work within one measured start-up, and counts a task
    // at 1 s until the pool has finished one. So the burst is 40 s of work to the policy: the pool must grow
    // unless a worker took longer than that to start (4 tasks, 4.5 s, once failed to grow on a loaded CI machine).
    const burst = await queue.add(...Array.from({ length: 40 }, (_, i) => ({ type: 'synthetic', name: `burst ${i}`, config: { duration_ms: 50 } })));
    const up = await waitFor(async () => (await decisions('quick')).find((d) => d.from >= 1 && d.to === 2), {
      what: 'the pool to grow to max_workers',
      timeoutMs: 60_000,
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}; pool: ${JSON.stringify(await rm.pool('quick'))}`);
    });
    expect(up.at - bootedAt).toBeLessThan(POLL_S * 1000);
    await waitFor(async () => (await Promise.all(burst.map(async (id) => (await queue.job(id))?.state))).every((s) => s === 'completed'), {
      what: 'the burst to complete',
      timeoutMs: 60_000,
    });
  });
});
