import { isolatedSuite } from '@fleet/testing';
import { suiteCoordinator, waitForFinished, waitForState } from './coordinator-harness.js';
import { seedConfigFiles } from './fixtures.js';

describe('idempotency keys and cancellation', () => {
  const suite = isolatedSuite('idem', seedConfigFiles());
  const coordinatorOf = suiteCoordinator(suite);

  const queued = async () => (await coordinatorOf().http.get('/queues').expect(200)).body.pools[0].counts.prioritized as number;

  it('returns the existing task for a key seen before, even under concurrent retries', async () => {
    const body = { type: 'synthetic', name: 'once', idempotency_key: 'nightly-2026-11-24' };
    const responses = await Promise.all(Array.from({ length: 10 }, () => coordinatorOf().http.post('/tasks').send(body)));
    const created = responses.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    expect(responses.filter((r) => r.status === 200).every((r) => r.body.duplicate === true)).toBe(true);
    expect(new Set(responses.map((r) => r.body.id))).toEqual(new Set([created[0]?.body.id]));
    expect(await queued()).toBe(1);
  });

  it('makes one run for racing POST /runs with one idempotency key: one 201, the others get that run (200), nothing merged', async () => {
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        coordinatorOf()
          .http.post('/runs')
          .send({ name: `race ${i}`, idempotency_key: 'race-2026-12-02', tasks: [{ key: `only-${i}`, type: 'synthetic', name: `t${i}` }] }),
      ),
    );
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    const created = responses.find((r) => r.status === 201)?.body as { id: string; name: string; files: Array<{ key: string }> };
    expect(new Set(responses.map((r) => r.body.id))).toEqual(new Set([created.id]));
    const run = (await coordinatorOf().http.get(`/runs/${created.id}`).expect(200)).body as { name: string; files: Array<{ key: string }> };
    // The run is one request's, whole: its name and its one task, no other request's task merged in.
    expect(run.files).toHaveLength(1);
    expect(run.files[0]?.key).toBe(`only-${run.name.split(' ')[1]}`);
    await coordinatorOf().http.delete(`/runs/${created.id}`).expect(200);
  });

  it('queues one task per key within a batch, and none for keys already used', async () => {
    const res = await coordinatorOf()
      .http.post('/tasks/batch')
      .send({
        tasks: [
          { type: 'synthetic', name: 'a', idempotency_key: 'k1' },
          { type: 'synthetic', name: 'a again', idempotency_key: 'k1' },
          { type: 'synthetic', name: 'old', idempotency_key: 'nightly-2026-11-24' },
          { type: 'synthetic', name: 'no key' },
        ],
      })
      .expect(201);
    const [a, aAgain, old] = res.body.ids;
    expect(aAgain).toBe(a);
    expect(res.body.duplicates).toBe(2);
    expect((await coordinatorOf().http.get(`/tasks/${old}`).expect(200)).body.name).toBe('once');
    expect(await queued()).toBe(3);
  });

  it('cancels a queued task, remembers it, and reports it as cancelled', async () => {
    const id = (
      await coordinatorOf()
        .http.post('/tasks')
        .send({ type: 'synthetic', name: 'unwanted', labels: { team: 'ci' } })
        .expect(201)
    ).body.id;
    const before = await queued();
    const res = await coordinatorOf().http.delete(`/tasks/${id}`).expect(200);
    expect(res.body).toMatchObject({ id, state: 'cancelled', name: 'unwanted', labels: { team: 'ci' } });
    expect((await coordinatorOf().http.get(`/tasks/${id}`).expect(200)).body.state).toBe('cancelled');
    expect(await queued()).toBe(before - 1);
    await coordinatorOf().http.delete(`/tasks/${id}`).expect(200);
  });

  it('refuses to cancel a running or finished task, saying why', async () => {
    const long = (
      await coordinatorOf()
        .http.post('/tasks')
        .send({ type: 'synthetic', name: 'long', priority: 1000, config: { duration_ms: 1500 } })
        .expect(201)
    ).body.id;
    suite.worker({ pool: 'cpu-worker', id: 'cancel-w', concurrency: 1 });
    await waitForState(coordinatorOf(), long, 'active');
    const running = await coordinatorOf().http.delete(`/tasks/${long}`).expect(409);
    expect(running.body.errors[0]).toEqual({ field: 'id', reason: expect.stringMatching(/running on worker cancel-w and cannot be cancelled/) });
    await waitForFinished(coordinatorOf(), [long]);
    const done = await coordinatorOf().http.delete(`/tasks/${long}`).expect(409);
    expect(done.body.message).toMatch(/already finished \(completed\)/);
  });

  it('queues one job for racing requests with one key whose tasks route to different pools (issue 22, defect 7)', async () => {
    const jobs = async () => {
      const pools = (await coordinatorOf().http.get('/queues').expect(200)).body.pools as Array<{ counts: Record<string, number> }>;
      return pools.reduce((n, p) => n + Object.values(p.counts).reduce((a, b) => a + b, 0), 0);
    };
    const before = await jobs();
    const keys = Array.from({ length: 20 }, (_, i) => `cross-pool-${i}`);
    const pairs = await Promise.all(
      keys.map((key) =>
        Promise.all([
          coordinatorOf()
            .http.post('/tasks')
            .send({ type: 'synthetic', name: `${key} on cpu`, idempotency_key: key }),
          coordinatorOf()
            .http.post('/tasks')
            .send({ type: 'synthetic', name: `${key} on gpu`, idempotency_key: key, hardware_requirements: { gpu: 1 } }),
        ]),
      ),
    );
    for (const [cpu, gpu] of pairs) {
      // One request made the job, the other was told of it: the same id, one 201 and one duplicate.
      expect([cpu.status, gpu.status].sort()).toEqual([200, 201]);
      expect(cpu.body.id).toBe(gpu.body.id);
      expect([cpu.body.duplicate, gpu.body.duplicate].sort()).toEqual([false, true]);
    }
    expect(await jobs()).toBe(before + keys.length);
  });
});
