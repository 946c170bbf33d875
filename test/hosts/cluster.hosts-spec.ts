import { loadCoordinatorSettings } from '../../apps/coordinator/src/coordinator-settings.js';
import { idempotentTaskId, newTaskId, parseTask, pendingClaim, type Task } from '@fleet/contracts';
import { AppMetrics } from '@fleet/ops';
import { clusterMasterOf, countMatching, createRedis, FleetKeys } from '@fleet/redis';
import { cpuTemplate, isolatedSuite, type Service, startRedisCluster, waitFor } from '@fleet/testing';
import type { Cluster, Redis } from 'ioredis';
import { TaskQueueRepository } from '../../apps/coordinator/src/task-queue.repository.js';

const FINAL = new Set(['completed', 'failed', 'cancelled']);

describe('the fleet on a real 3-master Redis Cluster', () => {
  const suite = isolatedSuite('cluster', {
    'worker_templates.json': {
      cpu: cpuTemplate({ concurrency: 4 }),
      gpu: cpuTemplate({ concurrency: 2, capabilities: ['GPU'] }),
      idle: cpuTemplate({ capabilities: ['IDLE'] }),
    },
    'performance_analyzer_config.json': { polling_interval: 0.3, metrics_grouping: ['pool'] },
    'spread/a.test.mjs': "import test from 'node:test';\ntest('a', () => {});\n",
    'spread/b.test.mjs': "import test from 'node:test';\ntest('b', () => {});\n",
  });
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let redis: Redis;
  // A hash tag: every key of this fleet in one slot of the cluster.
  const prefix = `{${suite.prefix}}`;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    redis = createRedis(cluster.url, 'consumer', 'cluster-test');
  });

  afterAll(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  /** Every task to reach a final state; returns their states. */
  const finalStates = (coordinator: Service, ids: readonly string[], what: string) =>
    waitFor(
      async () => {
        const s: string[] = [];
        for (const id of ids) s.push(((await coordinator.http.get(`/tasks/${id}`).expect(200)).body as { state: string }).state);
        return s.every((x) => FINAL.has(x)) ? s : undefined;
      },
      { what, timeoutMs: 60_000, intervalMs: 250 },
    );

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
    const states = await finalStates(coordinator, first.ids, '30 tasks to finish');
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

  it('spreads pools over the masters (FLEET_SPREAD=pools): batches across pools stay whole through a refusing shard and a crash part way', async () => {
    // A fleet name whose own tag and its two pools' tags land on three different masters.
    let name = '';
    let owners: Array<string | undefined> = [];
    for (let i = 0; i < 200 && new Set(owners).size < 3; i++) {
      name = `${suite.prefix}-${i}`;
      owners = await Promise.all([`{${name}}`, `{${name}:cpu}`, `{${name}:gpu}`].map((tag) => clusterMasterOf(redis, `${tag}:x`)));
    }
    expect(new Set(owners).size).toBe(3);
    const [fleetNode, cpuNode, gpuNode] = owners as string[];
    const prefix = `{${name}}`;
    const keys = new FleetKeys(prefix, 'pools');
    const env = { REDIS_URL: cluster.url, FLEET_PREFIX: prefix, FLEET_SPREAD: 'pools' };
    const coordinator = await suite.service('coordinator', env);
    suite.worker({ pool: 'cpu', env });
    suite.worker({ pool: 'gpu', env });
    const batchOf = (tag: string, n: number) => ({
      tasks: Array.from({ length: n }, (_, i) => ({
        type: 'synthetic',
        name: `${tag}${i}`,
        config: { duration_ms: 5 },
        idempotency_key: `${tag}${i}`,
        ...(i % 2 === 1 && { hardware_requirements: { capabilities: ['GPU'] } }),
      })),
    });
    const jobsIn = async (pool: string) => {
      const pools = (await coordinator.http.get('/queues').expect(200)).body.pools as Array<{ pool: string; counts: Record<string, number> }>;
      return Object.values(pools.find((p) => p.pool === pool)?.counts ?? {}).reduce((a, b) => a + b, 0);
    };

    // A batch across both pools (two slots, two masters) and its retry: queued whole, each task once.
    const first = (await coordinator.http.post('/tasks/batch').send(batchOf('a', 20)).expect(201)).body as { ids: string[] };
    const again = (await coordinator.http.post('/tasks/batch').send(batchOf('a', 20)).expect(201)).body as { ids: string[]; duplicates: number };
    expect(again.ids).toEqual(first.ids);
    expect(again.duplicates).toBe(20);
    expect((await finalStates(coordinator, first.ids, '20 tasks to finish')).every((s) => s === 'completed')).toBe(true);
    expect([await jobsIn('cpu'), await jobsIn('gpu')]).toEqual([10, 10]);

    // A run whose test files go to cpu and an extra task to gpu: its record (the fleet's slot) and both pools' parts.
    const run = (
      await coordinator.http
        .post('/runs')
        .send({
          name: 'spread',
          tests: ['spread/'],
          tasks: [{ key: 'probe', type: 'synthetic', name: 'probe', config: { duration_ms: 5 }, hardware_requirements: { capabilities: ['GPU'] } }],
        })
        .expect(201)
    ).body as { id: string };
    const ran = await waitFor(
      async () => {
        const r = (await coordinator.http.get(`/runs/${run.id}`).expect(200)).body as { state: string; counts: { total: number; passed: number } };
        return r.state === 'queued' || r.state === 'running' ? undefined : r;
      },
      { what: 'the run to finish', timeoutMs: 60_000, intervalMs: 250 },
    );
    expect([ran.state, ran.counts.total, ran.counts.passed]).toEqual(['passed', 3, 3]);
    expect([await jobsIn('cpu'), await jobsIn('gpu')]).toEqual([12, 11]);

    // Where the keys are: each pool's on its own master, the fleet's own on a third.
    // (The idle pool's keys, made when the coordinator opened its queue, sit wherever its tag landed.)
    const idleNode = await clusterMasterOf(redis, `{${name}:idle}:x`);
    const nodeOfPool: Record<string, string | undefined> = { cpu: cpuNode, gpu: gpuNode, idle: idleNode };
    const expectedNode = (key: string) => {
      const pool = /^\{[^:}]+:([^}]+)\}/.exec(key)?.[1];
      return pool === undefined ? fleetNode : nodeOfPool[pool];
    };
    const seenOn = new Map<string, number>();
    for (const node of (redis as unknown as Cluster).nodes('master')) {
      const at = `${node.options.host}:${node.options.port}`;
      for (const pattern of keys.everything) {
        let cursor = '0';
        do {
          const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          for (const k of found) expect([k, at]).toEqual([k, expectedNode(k)]);
          seenOn.set(at, (seenOn.get(at) ?? 0) + found.length);
        } while (cursor !== '0');
      }
    }
    expect([cpuNode, gpuNode, fleetNode].map((n) => (seenOn.get(n) ?? 0) > 0)).toEqual([true, true, true]);

    // gpu's master refuses writes (out of memory): a batch across both pools is refused whole (503), nothing of
    // it is queued in cpu's pool and no key is claimed; once the shard takes writes, the retry queues it once.
    const gpuMaster = createRedis(`redis://${gpuNode}`, 'consumer', 'cluster-test-oom');
    try {
      await gpuMaster.config('SET', 'maxmemory', '1');
      const refused = await coordinator.http.post('/tasks/batch').send(batchOf('b', 10)).expect(503);
      expect(JSON.stringify(refused.body)).toMatch(/OOM/);
    } finally {
      await gpuMaster.config('SET', 'maxmemory', '0');
      gpuMaster.disconnect();
    }
    expect(await jobsIn('cpu')).toBe(12);
    expect(await countMatching(redis, `${prefix}:idem:anonymous:b*`)).toBe(0);
    const b = (await coordinator.http.post('/tasks/batch').send(batchOf('b', 10)).expect(201)).body as { ids: string[] };
    expect((await finalStates(coordinator, b.ids, 'the retried batch')).every((s) => s === 'completed')).toBe(true);
    expect([await jobsIn('cpu'), await jobsIn('gpu')]).toEqual([17, 16]);

    // A coordinator that dies between the two steps: only the first ran (keys claimed, the batch recorded).
    const repo = new TaskQueueRepository(loadCoordinatorSettings({ ...env, CONFIG_DIR: suite.config.path }), new AppMetrics());
    await repo.open();
    const task = (n: string, gpu: boolean, key?: string): Task => {
      const parsed = parseTask({
        type: 'synthetic',
        name: n,
        config: { duration_ms: 5 },
        ...(key && { idempotency_key: key }),
        ...(gpu && { hardware_requirements: { capabilities: ['GPU'] } }),
      });
      if (!parsed.ok) throw new Error('bad task');
      return parsed.value;
    };
    const keyed = [
      { id: idempotentTaskId('cpu', 'anonymous', 'c0'), pool: 'cpu', task: task('c0', false, 'c0') },
      { id: idempotentTaskId('gpu', 'anonymous', 'c1'), pool: 'gpu', task: task('c1', true, 'c1') },
    ];
    const unkeyed = [
      { id: newTaskId('cpu'), pool: 'cpu', task: task('d0', false) },
      { id: newTaskId('gpu'), pool: 'gpu', task: task('d1', true) },
    ];
    try {
      await repo.recordPending('crashed-unkeyed', unkeyed, [], 'anonymous');
      await repo.recordPending(
        'crashed-keyed',
        keyed,
        [
          { key: 'c0', id: keyed[0].id, pending: pendingClaim('crashed', keyed[0].id) },
          { key: 'c1', id: keyed[1].id, pending: pendingClaim('crashed', keyed[1].id) },
        ],
        'anonymous',
      );
    } finally {
      await repo.onApplicationShutdown();
    }
    expect(await redis.hlen(keys.pendingBatches)).toBe(2);
    await coordinator.http.get(`/tasks/${keyed[0].id}`).expect(404);
    // A request that meets a pending key queues that batch at once: the key names a queued task, not an expired one.
    const dup = (
      await coordinator.http
        .post('/tasks')
        .send({ type: 'synthetic', name: 'c1', config: { duration_ms: 5 }, idempotency_key: 'c1', hardware_requirements: { capabilities: ['GPU'] } })
        .expect(200)
    ).body as { id: string; duplicate: boolean; state: string };
    expect([dup.id, dup.duplicate, dup.state === 'expired']).toEqual([keyed[1].id, true, false]);
    // The other batch is settled by the coordinators' reconciler once it is old enough (15 s).
    const all = [...keyed, ...unkeyed].map((t) => t.id);
    expect((await finalStates(coordinator, all, 'the crashed batches to be queued and run')).every((s) => s === 'completed')).toBe(true);
    expect(await redis.hlen(keys.pendingBatches)).toBe(0);
    expect([await jobsIn('cpu'), await jobsIn('gpu')]).toEqual([19, 18]);
  });
});
