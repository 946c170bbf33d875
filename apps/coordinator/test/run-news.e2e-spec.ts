import { cpuTemplate, isolatedSuite, NODE_JUNIT, type Service, waitFor } from '@fleet/testing';

const passing = "import { test } from 'node:test';\ntest('works', () => {});\n";

describe('a run goes on when its files end, not at the next RUNS_TICK_MS', () => {
  // The reconciler's tick comes after ten minutes: whatever happens sooner was set off by the workers' news.
  const TICK_MS = 600_000;
  const suite = isolatedSuite('run-news', {
    'worker_templates.json': { cpu: cpuTemplate({ concurrency: 2, runners: { test: { '.mjs': NODE_JUNIT } } }) },
    'news/setup.test.mjs': passing,
    'news/a.test.mjs': passing,
    'news/b.test.mjs': passing,
  });
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
});
