import type { Redis } from 'ioredis';
import { decodeTimingEvent } from '@fleet/contracts';
import { FleetKeys } from '@fleet/redis';
import { type AppProcess, type ConfigDir, TEST_REDIS_URL, cleanupPrefix, startWorker, testRedis, uniquePrefix, waitFor } from '@fleet/testing';
import { type Coordinator, startCoordinator, waitForFinished, waitForState } from './coordinator-harness.js';
import { seedConfigDir } from './fixtures.js';

describe('a worker killed with SIGKILL in the middle of its tasks', () => {
  const prefix = uniquePrefix('crash');
  let config: ConfigDir;
  let coordinator: Coordinator;
  let redis: Redis;
  const workers: AppProcess[] = [];

  beforeAll(async () => {
    config = seedConfigDir();
    redis = testRedis();
    coordinator = await startCoordinator({ prefix, configDir: config.path });
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await coordinator.close();
    await cleanupPrefix(redis, prefix);
    await redis.quit();
    config.remove();
  });

  it('has its tasks finished by another worker, each counted once, none lost', async () => {
    const doomed = startWorker({ pool: 'cpu-worker', id: 'doomed', prefix, configDir: config.path, redisUrl: TEST_REDIS_URL, concurrency: 2 });
    workers.push(doomed);
    const long = (
      await coordinator.http
        .post('/tasks')
        .send({ type: 'synthetic', name: 'long', priority: 9, config: { duration_ms: 3000 } })
        .expect(201)
    ).body.id;
    const running = await waitForState(coordinator, long, 'active');
    expect(running.worker_id).toBe('doomed');
    const rest = (
      await coordinator.http
        .post('/tasks/batch')
        .send({ tasks: Array.from({ length: 20 }, (_, i) => ({ type: 'synthetic', name: `t${i}`, config: { duration_ms: 200 } })) })
        .expect(201)
    ).body.ids as string[];

    doomed.child.kill('SIGKILL');
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const survivor = startWorker({ pool: 'cpu-worker', id: 'survivor', prefix, configDir: config.path, redisUrl: TEST_REDIS_URL, concurrency: 4 });
    workers.push(survivor);

    const ids = [long, ...rest];
    const views = await waitForFinished(coordinator, ids, 60_000);
    expect(views.filter((v) => v.state !== 'completed')).toEqual([]);
    const longView = views[0];
    expect(longView?.worker_id).toBe('survivor');
    expect(longView?.attempts.started).toBe(2);
    expect(longView?.attempts.made).toBe(1);

    // Exactly one completion per task in the timing stream: nothing lost, nothing run to completion twice.
    const completions = new Map<string, number>();
    await waitFor(
      async () => {
        completions.clear();
        for (const [, fields] of await redis.xrange(new FleetKeys(prefix).timings, '-', '+')) {
          const r = decodeTimingEvent(fields);
          if (r.ok && r.event.outcome === 'completed') completions.set(r.event.task_id, (completions.get(r.event.task_id) ?? 0) + 1);
        }
        return completions.size === ids.length;
      },
      { what: 'a completion event per task' },
    );
    expect([...completions.values()].every((n) => n === 1)).toBe(true);
    const counts = (await coordinator.http.get('/queues').expect(200)).body.pools[0].counts;
    expect(counts).toMatchObject({ completed: ids.length, failed: 0, active: 0, waiting: 0, prioritized: 0 });
    // The dead worker's registry entry expires by itself.
    await waitFor(async () => !(await coordinator.http.get('/workers')).body.workers.some((w: { id: string }) => w.id === 'doomed'), {
      what: 'the dead worker to leave the registry',
      timeoutMs: 10_000,
    });
  });
});
