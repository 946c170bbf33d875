import { isolatedSuite, TEST_REDIS_URL, waitFor } from '@fleet/testing';
import { loadCoordinatorSettings } from '../src/coordinator-settings.js';
import { RunsRepository } from '../src/runs.repository.js';
import { RunsReconciler } from '../src/runs.reconciler.js';
import { type Coordinator, startCoordinator, suiteCoordinator } from './coordinator-harness.js';
import { seedConfigFiles } from './fixtures.js';

// What requests leave behind is bounded by count as well as by age (issue 22, defects 8 and 9): idempotency
// claims, cancelled tasks' records, finished runs and the flaky-test index.
describe('records bounded by count', () => {
  const suite = isolatedSuite('bounds', seedConfigFiles());
  const env = { TASK_RETAIN_COMPLETED_COUNT: '3', TASK_RETAIN_FAILED_COUNT: '2', RUN_RETAIN_COUNT: '2', FLAKY_MAX_TESTS: '3' };
  const coordinatorOf = suiteCoordinator(suite, env);
  const count = async (pattern: string) => {
    let n = 0;
    for await (const keys of suite.redis.scanStream({ match: `${suite.prefix}:${pattern}`, count: 1000 })) n += (keys as string[]).length;
    return n;
  };

  it('keeps at most as many idempotency claims as finished tasks are kept (completed + failed), the newest', async () => {
    for (let i = 0; i < 12; i++)
      await coordinatorOf()
        .http.post('/tasks')
        .send({ type: 'synthetic', name: `k${i}`, idempotency_key: `key-${i}` })
        .expect(201);
    await waitFor(async () => (await count('idem:*')) <= 5, { what: 'at most 3 + 2 claims', timeoutMs: 10_000, intervalMs: 100 });
    // The newest key still names its task: a retry is a duplicate, not a second task.
    const again = await coordinatorOf().http.post('/tasks').send({ type: 'synthetic', name: 'k11 again', idempotency_key: 'key-11' }).expect(200);
    expect(again.body.duplicate).toBe(true);
  });

  it('keeps at most as many cancelled tasks’ records as failed tasks are kept', async () => {
    for (let i = 0; i < 5; i++) {
      const { id } = (
        await coordinatorOf()
          .http.post('/tasks')
          .send({ type: 'synthetic', name: `c${i}` })
          .expect(201)
      ).body as { id: string };
      await coordinatorOf().http.delete(`/tasks/${id}`).expect(200);
    }
    await waitFor(async () => (await count('cancelled:*')) <= 2, { what: 'at most 2 cancel records', timeoutMs: 10_000, intervalMs: 100 });
  });

  it('keeps at most RUN_RETAIN_COUNT finished runs, the oldest finished going first with all their keys', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const run = (
        await coordinatorOf()
          .http.post('/runs')
          .send({ name: `r${i}`, tasks: [{ key: 'only', type: 'synthetic', name: `r${i}` }] })
          .expect(201)
      ).body as { id: string };
      ids.push(run.id);
      await coordinatorOf().http.delete(`/runs/${run.id}`).expect(200);
      await waitFor(async () => ((await coordinatorOf().http.get(`/runs/${run.id}`)).body as { finished_at?: string | null }).finished_at != null, {
        what: `run ${i} finished (cancelled)`,
        timeoutMs: 10_000,
        intervalMs: 50,
      });
    }
    await waitFor(async () => (await coordinatorOf().http.get(`/runs/${ids[1]}`)).status === 404, {
      what: 'the second oldest run gone',
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    await coordinatorOf().http.get(`/runs/${ids[0]}`).expect(404);
    await coordinatorOf().http.get(`/runs/${ids[2]}`).expect(200);
    await coordinatorOf().http.get(`/runs/${ids[3]}`).expect(200);
    expect(await count(`run:${ids[0]}*`)).toBe(0);
  });

  it('keeps at most FLAKY_MAX_TESTS tests in the flaky index, and GET /flaky reads only flaky ones', async () => {
    const repo = new RunsRepository(
      loadCoordinatorSettings({ REDIS_URL: TEST_REDIS_URL, FLEET_PREFIX: suite.prefix, CONFIG_DIR: suite.config.path, ...env }),
    );
    try {
      await repo.open();
      await repo.countFlakiness(
        [
          { id: 'old-flaky', flaky: true },
          { id: 'a', flaky: false },
        ],
        'run-1',
        1_000,
      );
      await repo.countFlakiness(
        [
          { id: 'b', flaky: false },
          { id: 'c', flaky: true },
          { id: 'd', flaky: false },
        ],
        'run-2',
        2_000,
      );
      // Five tests seen, three kept: the two seen least recently went, with their counts.
      expect(await suite.redis.hlen(suite.keys.flaky)).toBe(3);
      expect([...(await repo.flakiness()).keys()]).toEqual(['c']);
      const listed = (await coordinatorOf().http.get('/flaky').expect(200)).body as { flaky: Array<{ test: string }> };
      expect(listed.flaky.map((f) => f.test)).toEqual(['c']);
    } finally {
      await repo.onApplicationShutdown();
    }
  });
});

describe('a run that cannot finish', () => {
  const suite = isolatedSuite('run-age', seedConfigFiles());
  // No worker serves these pools: without a bound the run would wait for ever.
  const coordinatorOf = suiteCoordinator(suite, { RUN_MAX_AGE_S: '2' });

  it('has what has not started cancelled after RUN_MAX_AGE_S, and ends', async () => {
    const run = (
      await coordinatorOf()
        .http.post('/runs')
        .send({
          name: 'stuck',
          tasks: [
            { key: 'first', type: 'synthetic', name: 'first' },
            { key: 'then', type: 'synthetic', name: 'then', depends_on: ['first'] },
          ],
        })
        .expect(201)
    ).body as { id: string };
    const ended = await waitFor(
      async () => {
        const v = (await coordinatorOf().http.get(`/runs/${run.id}`).expect(200)).body as {
          state: string;
          finished_at: string | null;
          files: Array<{ key: string; state: string; reason: string | null }>;
        };
        return v.finished_at !== null ? v : undefined;
      },
      { what: 'the run to end', timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(ended.state).toBe('cancelled');
    expect(ended.files.map((f) => [f.key, f.state]).sort()).toEqual([
      ['first', 'cancelled'],
      ['then', 'cancelled'],
    ]);
    expect(ended.files.every((f) => /RUN_MAX_AGE_S \(2 s\)/.test(f.reason ?? ''))).toBe(true);
  });
});

describe('a large run waiting for workers', () => {
  // A Redis of its own: the test counts the script calls the coordinator makes.
  const suite = isolatedSuite('run-wait', seedConfigFiles(), { privateRedis: {} });

  let coordinator: Coordinator | undefined;
  // Passes only when the test asks (`tick`): the counts below are per pass.
  const started = async () => {
    if (!coordinator) {
      const c = await startCoordinator({
        prefix: suite.prefix,
        configDir: suite.config.path,
        env: { REDIS_URL: suite.redisUrl, RUNS_TICK_MS: '60000' },
      });
      suite.onCleanup(() => c.close());
      coordinator = c;
    }
    return coordinator;
  };
  const calls = async (command: string) =>
    Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await suite.redis.info('commandstats'))?.[1] ?? 0);

  it('costs no script call per task on every pass of the reconciler (its tasks’ states are asked every 10 s at most)', async () => {
    const c = await started();
    const tasks = Array.from({ length: 100 }, (_, i) => ({ key: `t${i}`, type: 'synthetic', name: `t${i}` }));
    await c.http.post('/runs').send({ name: 'waits', tasks }).expect(201);
    const reconciler = c.app.get(RunsReconciler);
    const scriptCalls = () => calls('evalsha');
    await reconciler.tick(); // the first pass asks for the 100 states
    const before = await scriptCalls();
    for (let i = 0; i < 10; i++) await reconciler.tick();
    // Ten passes: without the bound, 10 × 100 calls.
    expect((await scriptCalls()) - before).toBeLessThan(100);
  });

  it('answers a view of a waiting run with one script call per pool, not one per task', async () => {
    const c = await started();
    const tasks = Array.from({ length: 100 }, (_, i) => ({ key: `v${i}`, type: 'synthetic', name: `v${i}` }));
    const { id } = (await c.http.post('/runs').send({ name: 'viewed', tasks }).expect(201)).body as { id: string };
    const scripts = async () => (await calls('evalsha')) + (await calls('eval'));
    const before = await scripts();
    const view = (await c.http.get(`/runs/${id}`).expect(200)).body as { files: Array<{ state: string }> };
    // Every task's state was asked (they read as queued); one per task would be 100 calls.
    expect(view.files.map((f) => f.state)).toEqual(tasks.map(() => 'queued'));
    expect((await scripts()) - before).toBeLessThan(10);
  });

  it('reads a finished run’s results once for its JUnit report, not on every call', async () => {
    const c = await started();
    const run = (
      await c.http
        .post('/runs')
        .send({ name: 'done', tasks: [{ key: 'only', type: 'synthetic', name: 'only' }] })
        .expect(201)
    ).body as { id: string };
    await c.http.delete(`/runs/${run.id}`).expect(200);
    await c.app.get(RunsReconciler).tick();
    await c.http
      .get(`/runs/${run.id}`)
      .expect(200)
      .expect((r) => expect(r.body.state).toBe('cancelled'));
    const reads = async () => (await calls('hgetall')) + (await calls('hmget'));
    const a = await reads();
    const first = (await c.http.get(`/runs/${run.id}/junit.xml`).expect(200)).text;
    const b = await reads();
    const second = (await c.http.get(`/runs/${run.id}/junit.xml`).expect(200)).text;
    const d = await reads();
    expect(second).toBe(first);
    // The first read the run, its tasks, attempts, cases and the quarantine; the second only the run and the quarantine.
    expect(b - a).toBeGreaterThanOrEqual(5);
    expect(d - b).toBe(2);
  });
});

describe('a batch with no room under the client’s caps', () => {
  const suite = isolatedSuite('room', seedConfigFiles());
  const coordinatorOf = suiteCoordinator(suite, { MAX_QUEUED_PER_CLIENT: '50' });

  it('is answered 429 before its tasks are validated or routed (the work a refused batch costs is bounded)', async () => {
    const c = coordinatorOf();
    // The cpu pool full (50 of 50); the gpu pool has room for 50.
    await c.http
      .post('/tasks/batch')
      .send({ tasks: Array.from({ length: 50 }, (_, i) => ({ type: 'synthetic', name: `fill ${i}` })) })
      .expect(201);
    // 10,000 tasks, the last one invalid: validated, this would be a 400 naming tasks[9999].
    const tasks: object[] = Array.from({ length: 9_999 }, (_, i) => ({ type: 'synthetic', name: `big ${i}` }));
    tasks.push({ type: 'synthetic' });
    const refused = await c.http.post('/tasks/batch').send({ tasks });
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.body.errors[0].reason).toMatch(
      /room for 50 more queued task\(s\) in all pools together \(at most 50 may wait in each pool: MAX_QUEUED_PER_CLIENT\), and the batch holds 10000/,
    );
    // A batch that may fit is still validated as before.
    const bad = await c.http.post('/tasks/batch').send({ tasks: [{ type: 'synthetic' }] });
    expect(bad.status).toBe(400);
  });
});
