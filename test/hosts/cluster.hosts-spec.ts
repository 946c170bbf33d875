import { createRedis, FleetKeys } from '@fleet/redis';
import { cpuTemplate, isolatedSuite, type Service, startRedisCluster, waitFor } from '@fleet/testing';
import type { Redis } from 'ioredis';

const FINAL = new Set(['completed', 'failed', 'cancelled']);

describe('the fleet on a real 3-master Redis Cluster', () => {
  const suite = isolatedSuite('cluster', {
    'worker_templates.json': {
      cpu: cpuTemplate({ concurrency: 4 }),
      gpu: cpuTemplate({ concurrency: 2, capabilities: ['GPU'] }),
      idle: cpuTemplate({ capabilities: ['IDLE'] }),
    },
    'performance_analyzer_config.json': { polling_interval: 0.3, metrics_grouping: ['pool'] },
  });
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let redis: Redis;
  // A hash tag: every key of this fleet in one slot of the cluster.
  const prefix = `{${suite.prefix}}`;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    redis = createRedis(cluster.url, 'consumer', 'cluster-test');
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it('runs tasks on two pools with idempotent batches, cancellation and the analyzer; every key is in one slot', async () => {
    const env = { REDIS_URL: cluster.url, FLEET_PREFIX: prefix };
    const coordinator: Service = await suite.service('coordinator', env);
    const analyzer = await suite.service('trend-analyzer', env);
    suite.worker({ pool: 'cpu', env });
    suite.worker({ pool: 'gpu', env });

    const batch = {
      tasks: [
        ...Array.from({ length: 20 }, (_, i) => ({ type: 'synthetic', name: `c${i}`, config: { duration_ms: 10 }, idempotency_key: `c${i}` })),
        ...Array.from({ length: 10 }, (_, i) => ({
          type: 'synthetic',
          name: `g${i}`,
          config: { duration_ms: 10 },
          hardware_requirements: { capabilities: ['GPU'] },
          idempotency_key: `g${i}`,
        })),
      ],
    };
    const first = (await coordinator.http.post('/tasks/batch').send(batch).expect(201)).body as { ids: string[] };
    // A retried batch: the same ids, nothing queued twice.
    const again = (await coordinator.http.post('/tasks/batch').send(batch).expect(201)).body as { ids: string[] };
    expect(again.ids).toEqual(first.ids);
    const states = await waitFor(
      async () => {
        const s: string[] = [];
        for (const id of first.ids) s.push(((await coordinator.http.get(`/tasks/${id}`).expect(200)).body as { state: string }).state);
        return s.every((x) => FINAL.has(x)) ? s : undefined;
      },
      { what: '30 tasks to finish', timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(states.every((s) => s === 'completed')).toBe(true);
    const pools = new Set<string>();
    for (const id of first.ids) pools.add(((await coordinator.http.get(`/tasks/${id}`).expect(200)).body as { pool: string }).pool);
    expect([...pools].sort()).toEqual(['cpu', 'gpu']);

    // A task for a pool without workers waits; cancelling it removes it from its queue.
    const queued = (
      await coordinator.http
        .post('/tasks')
        .send({ type: 'synthetic', name: 'later', config: { duration_ms: 0 }, hardware_requirements: { capabilities: ['IDLE'] } })
        .expect(201)
    ).body as { id: string };
    await coordinator.http.delete(`/tasks/${queued.id}`).expect(200);
    expect(((await coordinator.http.get(`/tasks/${queued.id}`).expect(200)).body as { state: string }).state).toBe('cancelled');

    await waitFor(
      async () => ((await analyzer.http.get('/metrics/summary').expect(200)).body as { events: { processed: number } }).events.processed >= 30,
      {
        what: 'the analyzer to count the timing events',
        timeoutMs: 30_000,
        intervalMs: 250,
      },
    );

    // Every key of the fleet, on whichever node holds it, hashes to the one slot of the tag.
    const keys = new FleetKeys(prefix);
    const slot = Number(await redis.cluster('KEYSLOT', keys.timings));
    let seen = 0;
    for (const node of (redis as unknown as import('ioredis').Cluster).nodes('master')) {
      let cursor = '0';
      do {
        const [next, batchKeys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        for (const k of batchKeys) {
          expect([k, Number(await redis.cluster('KEYSLOT', k))]).toEqual([k, slot]);
          seen++;
        }
      } while (cursor !== '0');
    }
    expect(seen).toBeGreaterThan(10);
  });
});
