import { decodeTimingEvent } from '@fleet/contracts';
import { isolatedSuite, waitFor } from '@fleet/testing';
import { suiteCoordinator, waitForFinished } from './coordinator-harness.js';
import { SEED_TASKS, seedConfigFiles } from './fixtures.js';

describe('submitting tasks end to end (real Redis, real worker processes)', () => {
  const suite = isolatedSuite('submit', seedConfigFiles());
  const coordinatorOf = suiteCoordinator(suite);

  beforeAll(() => {
    // The workers' default locks (10 s, checked every 5 s) rather than the test-speed 2 s: nothing here crashes, and
    // each task must start once. On a loaded machine a 2 s lock can miss its renewal; BullMQ then counts the task
    // stalled and starts it again, as it should.
    const locks = { WORKER_LOCK_MS: '10000', WORKER_STALLED_INTERVAL_MS: '5000' };
    for (const id of ['cpu-a', 'cpu-b']) suite.worker({ pool: 'cpu-worker', id, concurrency: 8, env: locks });
  });

  it('runs the seed tasks and a batch of 200 synthetic tasks; every result is readable by id', async () => {
    const seed = await coordinatorOf().http.post('/tasks/batch').send(SEED_TASKS).expect(201);
    const synthetic = Array.from({ length: 200 }, (_, i) => ({
      type: 'synthetic',
      name: `load ${i}`,
      priority: i % 7,
      config: { duration_ms: i % 10, metrics: { queue_length: i } },
      labels: { model_name: 'synthetic' },
    }));
    const batch = await coordinatorOf().http.post('/tasks/batch').send({ tasks: synthetic }).expect(201);
    expect(batch.body.ids).toHaveLength(200);
    expect(new Set(batch.body.ids).size).toBe(200);

    const ids: string[] = [...seed.body.ids, ...batch.body.ids];
    const views = await waitForFinished(coordinatorOf(), ids, 90_000);
    const failed = views.filter((v) => v.state !== 'completed');
    expect(failed).toEqual([]);

    const [cpuTest, bench] = views;
    expect(cpuTest).toMatchObject({
      name: 'CPU Backend Test',
      type: 'test',
      pool: 'cpu-worker',
      priority: 5,
      result: { outcome: 'passed', exit_code: 0 },
    });
    expect(cpuTest?.result?.output_tail).toMatch(/OK/);
    expect(bench).toMatchObject({
      name: 'Small BERT Benchmark',
      labels: { model_name: 'prajjwal1/bert-tiny' },
      result: { outcome: 'completed', metrics: { latency_ms: 12.5, throughput_items_per_second: 80, iterations: 3 } },
    });
    for (const v of views) {
      expect(['cpu-a', 'cpu-b']).toContain(v.worker_id);
      expect(v.attempts).toEqual({ made: 1, started: 1, max: 1 });
      expect(Date.parse(v.timings.finished_at as string)).toBeGreaterThanOrEqual(Date.parse(v.timings.started_at as string));
    }

    // One timing event per task, each marked final and completed.
    const entries = await waitFor(
      async () => {
        const all = await suite.redis.xrange(suite.keys.timings, '-', '+');
        return all.length >= ids.length ? all : undefined;
      },
      { what: 'a timing event per task' },
    );
    const events = entries.map(([, fields]) => decodeTimingEvent(fields));
    expect(events.every((e) => e.ok)).toBe(true);
    const byTask = new Map(events.map((e) => (e.ok ? [e.event.task_id, e.event] : ['', undefined])));
    expect(entries).toHaveLength(ids.length);
    expect([...byTask.keys()].sort()).toEqual([...ids].sort());
    const benchEvent = byTask.get(bench?.id);
    expect(benchEvent).toMatchObject({
      task_type: 'benchmark',
      outcome: 'completed',
      final: true,
      labels: { model_name: 'prajjwal1/bert-tiny' },
      metrics: { latency_ms: 12.5 },
    });
  });

  it('lists the workers with their pool and capabilities, and counts per pool', async () => {
    const res = await coordinatorOf().http.get('/workers').expect(200);
    expect(res.body.workers.map((w: { id: string }) => w.id).sort()).toEqual(['cpu-a', 'cpu-b']);
    expect(res.body.workers[0]).toMatchObject({ pool: 'cpu-worker', capabilities: ['CPU', 'ONNX'], concurrency: 8, status: 'running' });
    const queues = await coordinatorOf().http.get('/queues').expect(200);
    expect(queues.body.pools).toEqual([
      { pool: 'cpu-worker', counts: { waiting: 0, prioritized: 0, delayed: 0, active: 0, completed: 202, failed: 0 } },
      { pool: 'gpu-worker', counts: { waiting: 0, prioritized: 0, delayed: 0, active: 0, completed: 0, failed: 0 } },
    ]);
    await coordinatorOf().http.get('/health').expect(200, { status: 'ok', redis: 'up' });
  });
});
