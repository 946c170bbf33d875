import type { Redis } from 'ioredis';
import { FleetKeys, WorkerRegistry } from '@fleet/redis';
import {
  type ConfigDir,
  TEST_REDIS_URL,
  TestTaskQueue,
  cleanupPrefix,
  cpuTemplate,
  isAlive,
  makeConfigDir,
  testRedis,
  uniquePrefix,
  waitFor,
} from '@fleet/testing';
import { fastConfig, type ResourceManager, startResourceManager } from './rm-harness.js';

describe('two resource managers on one Redis', () => {
  const prefix = uniquePrefix('two');
  let config: ConfigDir;
  let redis: Redis;
  let queue: TestTaskQueue;
  let registry: WorkerRegistry;
  const managers: ResourceManager[] = [];

  beforeAll(async () => {
    config = makeConfigDir({
      'worker_templates.json': { cpu: cpuTemplate({ concurrency: 1 }) },
      'resource_manager_config.json': fastConfig({ max_workers: 3 }),
    });
    redis = testRedis();
    queue = new TestTaskQueue(TEST_REDIS_URL, prefix, 'cpu');
    registry = new WorkerRegistry(redis, new FleetKeys(prefix));
    managers.push(await startResourceManager({ prefix, configDir: config.path, id: 'rm-a' }));
    managers.push(await startResourceManager({ prefix, configDir: config.path, id: 'rm-b' }));
  });

  afterAll(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    await queue.close();
    await cleanupPrefix(redis, prefix);
    await redis.quit();
    config.remove();
  });

  it('never run more than max_workers between them; one acts, the other takes over when it dies', async () => {
    const [a, b] = managers as [ResourceManager, ResourceManager];
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
