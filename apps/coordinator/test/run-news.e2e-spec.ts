import { cpuTemplate, isolatedSuite, NODE_JUNIT, type Service, waitFor, watchCommands } from '@fleet/testing';

const passing = "import { test } from 'node:test';\ntest('works', () => {});\n";
// Runs until the test opens its gate (a file in the workdir), checking every 20 ms: the test then knows it is running.
const gated =
  "import { test } from 'node:test';\nimport { existsSync } from 'node:fs';\n" +
  "test('waits for its gate', async () => { while (!existsSync('gate-open')) await new Promise((r) => setTimeout(r, 20)); });\n";

describe('a run goes on when its files end, not at the next RUNS_TICK_MS', () => {
  // The reconciler's tick comes after ten minutes: whatever happens sooner was set off by the workers' news.
  const TICK_MS = 600_000;
  const suite = isolatedSuite(
    'run-news',
    {
      'worker_templates.json': { cpu: cpuTemplate({ concurrency: 2, runners: { test: { '.mjs': NODE_JUNIT } } }) },
      'news/setup.test.mjs': passing,
      'news/a.test.mjs': passing,
      'news/b.test.mjs': passing,
      ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`many/f${i}.test.mjs`, passing])),
      ...Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`gated/g${i}.test.mjs`, gated])),
    },
    // A Redis of its own: a test watches what the coordinator reads (MONITOR, which the ACL run's user may not run).
    { privateRedis: {} },
  );
  let coordinator: Service;
  let startedAt: number;

  beforeAll(async () => {
    startedAt = Date.now();
    coordinator = await suite.service('coordinator', { RUNS_TICK_MS: String(TICK_MS) });
    suite.worker({ pool: 'cpu', id: 'w1' });
  });

  it('releases dependents when their dependency passes, and finalizes the run when its last file ends', async () => {
    const created = await coordinator.http
      .post('/runs')
      .send({
        name: 'news',
        tests: ['news/a.test.mjs', 'news/b.test.mjs'],
        tests_depend_on: ['setup'],
        tasks: [{ key: 'setup', type: 'test', name: 'setup', config: { test_file: 'news/setup.test.mjs' } }],
      })
      .expect(201);
    const run = await waitFor(
      async () => {
        const r = (await coordinator.http.get(`/runs/${created.body.id}`).expect(200)).body as { state: string; finished_at: string | null };
        return r.finished_at !== null ? r : undefined;
      },
      { what: 'the run to finish', timeoutMs: 60_000, intervalMs: 100 },
    );
    expect(run.state).toBe('passed');
    // Released and finalized with no tick at all: the first would have come TICK_MS after the coordinator started.
    expect(Date.parse(run.finished_at ?? '') - startedAt).toBeLessThan(TICK_MS);
  });

  it('reads a run without dependents whole once its files have all ended, not once per file', async () => {
    // Every command Redis runs, watched for reads of this run's tasks (each whole reading of the run has one).
    let id = '';
    let reads = 0;
    const watch = await watchCommands(suite.redisUrl, ({ name, args }) => {
      if (name === 'hgetall' && id !== '' && args[0] === suite.keys.runTasks(id)) reads++;
    });
    suite.onCleanup(() => watch.close());
    id = (
      await coordinator.http
        .post('/runs')
        .send({ name: 'many', tests: ['many/'] })
        .expect(201)
    ).body.id as string;
    // Watched in Redis, not through the run's view (which reads its tasks too).
    const state = await waitFor(async () => (await suite.redis.hget(suite.keys.run(id), 'state')) ?? undefined, {
      what: 'the run to be finalized',
      timeoutMs: 60_000,
    });
    expect(state).toBe('passed');
    // Twelve files: only the twelfth's news reaches the coordinator, whose reading finalizes the run (its files
    // without and with their cases). Once per file, it would be 12 or more.
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(3);
    // The first eleven files' last attempts told no one: the run has no dependents and had files to go.
    const news = await suite.redis.xrange(suite.keys.runNews, '-', '+');
    expect(news.filter(([, fields]) => fields[1] === id).map(([, fields]) => fields[3])).toEqual(['12']);
  });

  it('finalizes a cancelled run when its running files end, though it has fewer last attempts than files', async () => {
    const id = (
      await coordinator.http
        .post('/runs')
        .send({ name: 'gated', tests: ['gated/'] })
        .expect(201)
    ).body.id as string;
    // The worker has two slots: two files run, the third waits in the queue.
    await waitFor(
      async () => {
        const r = (await coordinator.http.get(`/runs/${id}`).expect(200)).body as { counts: { running: number } };
        return r.counts.running === 2 || undefined;
      },
      { what: 'two files to be running', timeoutMs: 60_000, intervalMs: 50 },
    );
    await coordinator.http.delete(`/runs/${id}`).expect(200);
    suite.config.write('gate-open', '');
    // Two last attempts of three files: without the cancellation's news the run would wait for the tick.
    const state = await waitFor(async () => (await suite.redis.hget(suite.keys.run(id), 'state')) ?? undefined, {
      what: 'the cancelled run to be finalized',
      timeoutMs: 60_000,
    });
    expect(state).toBe('cancelled');
  });
});
