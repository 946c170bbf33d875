import { cpuTemplate, isolatedSuite } from '@fleet/testing';

const pools = ['alpha', 'beta'];
const batch = () => ({
  tasks: Array.from({ length: 3000 }, (_, i) => ({
    type: 'synthetic',
    name: `batch task ${i} ${'x'.repeat(150)}`,
    idempotency_key: `nightly-${i}`,
    hardware_requirements: { capabilities: [pools[i % 2]] },
  })),
});

describe('a batch that Redis refuses part way through (out of memory)', () => {
  const suite = isolatedSuite(
    'atomic',
    { 'worker_templates.json': Object.fromEntries(pools.map((p) => [p, cpuTemplate({ capabilities: [p] })])) },
    { privateRedis: {} },
  );
  const queued = async () =>
    (await Promise.all(pools.map((p) => suite.queue(p).queue.getJobCounts('prioritized', 'waiting')))).reduce(
      (n, c) => n + (c.prioritized ?? 0) + (c.waiting ?? 0),
      0,
    );
  const keysClaimed = async () => (await suite.redis.keys(`${suite.prefix}:idem:*`)).length;

  it('queues none of it and claims no key; the same batch retried queues each task exactly once', async () => {
    const coordinator = await suite.service('coordinator');
    const used = Number(/used_memory:(\d+)/.exec(await suite.redis.info('memory'))?.[1]);
    // Room for a part of the batch only: each task takes about 1 KB in Redis.
    await suite.redis.config('SET', 'maxmemory', String(used + 600 * 1024));
    const refused = await coordinator.http.post('/tasks/batch').send(batch());
    expect(refused.status).toBe(503);
    expect(refused.body.message).toMatch(/Redis refused the write, so nothing was done/);
    expect(await queued()).toBe(0);
    expect(await keysClaimed()).toBe(0);

    await suite.redis.config('SET', 'maxmemory', '0');
    const accepted = await coordinator.http.post('/tasks/batch').send(batch()).expect(201);
    expect(accepted.body.duplicates).toBe(0);
    expect(await queued()).toBe(3000);
    const again = await coordinator.http.post('/tasks/batch').send(batch()).expect(201);
    expect(again.body.duplicates).toBe(3000);
    expect(again.body.ids).toEqual(accepted.body.ids);
    expect(await queued()).toBe(3000);
    expect(await keysClaimed()).toBe(3000);
  });
});
