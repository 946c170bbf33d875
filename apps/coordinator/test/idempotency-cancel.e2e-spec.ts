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
});
