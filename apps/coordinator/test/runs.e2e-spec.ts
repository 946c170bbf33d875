import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { cpuTemplate, distEntry, isolatedSuite, NODE_JUNIT, type Service, waitFor } from '@fleet/testing';

const testFile = (body: string) => `import { test } from 'node:test';\nimport assert from 'node:assert/strict';\n${body}\n`;
const waits = (ms: number) => testFile(`test('works', async () => { await new Promise((r) => setTimeout(r, ${ms})); assert.ok(true); });`);

/** A 30-file suite: 27 that pass (taking 0 to 320 ms), one failing, one flaky (fails its first attempt), one with a skipped case. */
function suiteFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < 27; i++) files[`suite/t${String(i).padStart(2, '0')}.test.mjs`] = waits((i % 9) * 40);
  files['suite/t27-failing.test.mjs'] = testFile("test('adds', () => assert.equal(1 + 1, 3));");
  files['suite/t28-flaky.test.mjs'] = testFile(
    "test('settles', () => assert.notEqual(process.env.FLEET_ATTEMPT, '1', 'fails on its first attempt'));",
  );
  files['suite/t29-skip.test.mjs'] = testFile("test('runs', () => assert.ok(true));\ntest.skip('is skipped', () => assert.fail('never'));");
  files['deps/setup-fails.test.mjs'] = testFile("test('setup', () => assert.fail('the database is down'));");
  files['deps/setup-passes.test.mjs'] = waits(10);
  files['deps/a.test.mjs'] = waits(10);
  files['deps/b.test.mjs'] = waits(10);
  for (let i = 0; i < 6; i++) files[`slow/s${i}.test.mjs`] = waits(1500);
  files['cli/fails.test.mjs'] = testFile("test('fails', () => assert.fail('as it should'));");
  return files;
}

interface RunView {
  id: string;
  state: string;
  counts: Record<string, number>;
  flaky: string[];
  files: Array<{ key: string; task_id: string; state: string; reason: string | null; attempts: number; duration_ms: number | null }>;
}

/**
 * Nothing here loses a lock on purpose: the workers hold theirs for 10 s, not the test default of 2 s, under which a
 * file starved of CPU on a loaded CI machine was killed by the worker's guard (exit 137) before its lock was renewed.
 */
const STEADY_LOCKS = { WORKER_LOCK_MS: '10000', WORKER_STALLED_INTERVAL_MS: '5000' };

describe('runs: a suite as one unit', () => {
  const suite = isolatedSuite('runs', {
    'worker_templates.json': {
      cpu: cpuTemplate({ concurrency: 4, runners: { test: { '.mjs': NODE_JUNIT } } }),
      slow: cpuTemplate({ concurrency: 1, capabilities: ['SLOW'], runners: { test: { '.mjs': NODE_JUNIT } } }),
    },
    'performance_analyzer_config.json': { polling_interval: 0.3 },
    ...suiteFiles(),
  });
  let coordinator: Service;
  const runs = () => coordinator.http;
  const finished = (id: string, timeoutMs = 60_000) =>
    waitFor(
      async () => {
        const r = (await runs().get(`/runs/${id}`).expect(200)).body as RunView & { finished_at: string | null };
        // Finalized: its flakiness is counted.
        return r.finished_at !== null ? r : undefined;
      },
      { what: `run ${id} to finish`, timeoutMs, intervalMs: 200 },
    );

  beforeAll(async () => {
    coordinator = await suite.service('coordinator', { RUNS_TICK_MS: '200' });
    await suite.service('trend-analyzer');
  });

  let first: RunView;

  it('runs a 30-file suite: the failing file fails the run, the flaky one passes on its retry and is named, the skipped case is skipped', async () => {
    suite.worker({ pool: 'cpu', id: 'w1', env: STEADY_LOCKS });
    const created = await runs()
      .post('/runs')
      .send({ name: 'nightly', tests: ['suite/'], retries: 1, labels: { commit: 'abc123', branch: 'main' } })
      .expect(201);
    expect(created.body).toMatchObject({ state: 'queued', counts: { total: 30 } });
    first = await finished(created.body.id);
    expect(first.state).toBe('failed');
    expect(first.counts).toMatchObject({ total: 30, done: 30, passed: 28, failed: 1, flaky: 1, error: 0 });
    expect(first.flaky).toEqual(['suite/t28-flaky.test.mjs']);
    const failing = first.files.find((f) => f.key === 'suite/t27-failing.test.mjs');
    expect(failing).toMatchObject({ state: 'failed', reason: 'test_failed', attempts: 2 });
    expect(first.files.find((f) => f.key === 'suite/t28-flaky.test.mjs')).toMatchObject({ state: 'flaky', attempts: 2 });
  });

  it('writes one JUnit document: a suite per file, checked case by case (failure, flakyFailure, skipped)', async () => {
    const xml = (await runs().get(`/runs/${first.id}/junit.xml`).expect(200).expect('content-type', /xml/)).text;
    const doc = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      isArray: (n) => ['testsuite', 'testcase', 'flakyFailure', 'property'].includes(n),
    }).parse(xml);
    const root = doc.testsuites;
    expect(root).toMatchObject({ name: 'nightly', tests: '31', failures: '1', errors: '0', skipped: '1' });
    expect(root.properties.property).toEqual(
      expect.arrayContaining([
        { name: 'commit', value: 'abc123' },
        { name: 'run_id', value: first.id },
      ]),
    );
    const suites = new Map<string, { testcase: Array<Record<string, unknown>> }>(root.testsuite.map((s: { name: string }) => [s.name, s]));
    expect(suites.size).toBe(30);
    for (const [name, s] of suites) {
      for (const c of s.testcase) expect([name, c.classname]).toEqual([name, name]);
    }
    const failing = suites.get('suite/t27-failing.test.mjs')?.testcase[0] as { name: string; failure: { message: string; '#text': string } };
    expect(failing.name).toBe('adds');
    expect(failing.failure.message).toMatch(/Expected values to be strictly equal/);
    expect(failing.failure['#text']).toMatch(/AssertionError/);
    const flaky = suites.get('suite/t28-flaky.test.mjs')?.testcase[0] as { failure?: unknown; flakyFailure: Array<{ message: string }> };
    expect(flaky.failure).toBeUndefined();
    expect(flaky.flakyFailure[0]?.message).toMatch(/fails on its first attempt/);
    const skipCases = suites.get('suite/t29-skip.test.mjs')?.testcase as Array<{ name: string; skipped?: unknown }>;
    expect(skipCases.map((c) => [c.name, c.skipped !== undefined])).toEqual([
      ['runs', false],
      ['is skipped', true],
    ]);
    const passing = suites.get('suite/t05.test.mjs')?.testcase as Array<Record<string, unknown>>;
    expect(passing).toEqual([expect.objectContaining({ name: 'works', classname: 'suite/t05.test.mjs' })]);
  });

  it('keeps flakiness per test across runs (GET /flaky)', async () => {
    const { flaky } = (await runs().get('/flaky').expect(200)).body;
    expect(flaky).toEqual([expect.objectContaining({ test: 'suite/t28-flaky.test.mjs', runs: 1, flaky: 1, rate: 1, last_flaky_run: first.id })]);
  });

  it("queues a second run of the suite longest first, by the first run's durations; a quarantined failure no longer fails it", async () => {
    // The analyzer has learned each file's duration from the first run's timing events.
    const learned = await waitFor(
      async () => {
        const d = await suite.redis.hgetall(suite.keys.testDurations);
        return Object.keys(d).filter((k) => k.startsWith('cpu|suite/')).length === 30 ? d : undefined;
      },
      { what: "the analyzer to learn every file's duration" },
    );
    // The queue is paused while the second run is queued, so its order can be read off the queue.
    await suite.queue('cpu').queue.pause();
    await runs().put('/quarantine').send({ test: 'suite/t27-failing.test.mjs', reason: 'tracked in JIRA-1' }).expect(200);
    const second = (
      await runs()
        .post('/runs')
        .send({ name: 'nightly again', tests: ['suite/*.test.mjs'], retries: 1, labels: { branch: 'main' } })
        .expect(201)
    ).body as RunView;
    const queuedIds = await suite.redis.zrange(suite.keys.queueKey('cpu', 'prioritized'), 0, -1);
    const keyOf = new Map(second.files.map((f) => [f.task_id, f.key]));
    const order = queuedIds.map((id) => keyOf.get(id) as string);
    const expected = [...order].sort((a, b) => Number(learned[`cpu|${b}`]) - Number(learned[`cpu|${a}`]) || a.localeCompare(b));
    expect(order).toHaveLength(30);
    expect(order).toEqual(expected);
    expect(Number(learned[`cpu|${order[0]}`])).toBeGreaterThan(Number(learned[`cpu|${order[29]}`]));
    await suite.queue('cpu').queue.resume();
    const done = await finished(second.id);
    expect(done.state).toBe('passed');
    expect(done.files.find((f) => f.key === 'suite/t27-failing.test.mjs')).toMatchObject({ state: 'failed', quarantined: true });
    expect((await runs().get('/flaky').expect(200)).body.flaky[0]).toMatchObject({
      test: 'suite/t28-flaky.test.mjs',
      runs: 2,
      flaky: 2,
      quarantined: false,
    });
    const listed = (await runs().get('/runs?label=branch=main').expect(200)).body.runs.map((r: { id: string }) => r.id);
    expect(listed).toEqual([second.id, first.id]);
  });

  it('dependencies: a failing setup cancels its dependents with the reason; a passing one releases them, and a report waits for every test', async () => {
    const spec = (setup: string) => ({
      name: `deps ${setup}`,
      tests: ['deps/a.test.mjs', 'deps/b.test.mjs'],
      tests_depend_on: ['setup'],
      tasks: [
        { key: 'setup', type: 'test', name: 'setup', config: { test_file: setup } },
        { key: 'report', type: 'synthetic', name: 'report', depends_on: ['*'] },
      ],
    });
    const failed = await finished((await runs().post('/runs').send(spec('deps/setup-fails.test.mjs')).expect(201)).body.id);
    expect(failed.state).toBe('failed');
    const reasons = Object.fromEntries(failed.files.map((f) => [f.key, [f.state, f.reason]]));
    expect(reasons).toEqual({
      setup: ['failed', 'test_failed'],
      'deps/a.test.mjs': ['cancelled', 'dependency setup failed'],
      'deps/b.test.mjs': ['cancelled', 'dependency setup failed'],
      report: ['cancelled', expect.stringMatching(/^dependency deps\/[ab]\.test\.mjs was cancelled$/)],
    });
    const passed = await finished((await runs().post('/runs').send(spec('deps/setup-passes.test.mjs')).expect(201)).body.id);
    expect(passed.state).toBe('passed');
    const times = async (key: string) =>
      (
        await runs()
          .get(`/tasks/${passed.files.find((f) => f.key === key)?.task_id}`)
          .expect(200)
      ).body.timings;
    const setup = await times('setup');
    const [a, b, report] = [await times('deps/a.test.mjs'), await times('deps/b.test.mjs'), await times('report')];
    expect(Date.parse(a.started_at)).toBeGreaterThanOrEqual(Date.parse(setup.finished_at));
    expect(Date.parse(b.started_at)).toBeGreaterThanOrEqual(Date.parse(setup.finished_at));
    expect(Date.parse(report.started_at)).toBeGreaterThanOrEqual(Math.max(Date.parse(a.finished_at), Date.parse(b.finished_at)));
  });

  it('cancel: what is queued is cancelled, what runs finishes, the run ends cancelled', async () => {
    suite.worker({ pool: 'slow', id: 'slow-1', env: STEADY_LOCKS });
    const created = (
      await runs()
        .post('/runs')
        .send({ name: 'to cancel', tests: ['slow/'], hardware_requirements: { capabilities: ['SLOW'] } })
        .expect(201)
    ).body;
    await waitFor(async () => ((await runs().get(`/runs/${created.id}`)).body as RunView).counts.running === 1, {
      what: 'the first slow file to start',
    });
    const cancelled = (await runs().delete(`/runs/${created.id}`).expect(200)).body as RunView;
    expect(cancelled.counts).toMatchObject({ cancelled: 5, running: 1 });
    const done = await finished(created.id);
    expect(done).toMatchObject({ state: 'cancelled', counts: { passed: 1, cancelled: 5 } });
    expect((await suite.queue('slow').queue.getJobCounts('prioritized')).prioritized).toBe(0);
  });

  it('the CLI exits 0 when the run passed (writing JUnit), 1 when it failed, 2 on an error', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [distEntry('cli'), 'run', ...args, '--poll-ms', '200'], {
        env: { ...process.env, COORDINATOR_URL: coordinator.url },
        encoding: 'utf8',
        timeout: 60_000,
      });
    const junit = join(suite.config.path, 'out.xml');
    const ok = cli('suite/t0[0-3].test.mjs', '--junit', junit, '--label', 'ci=yes');
    expect([ok.status, ok.stdout]).toEqual([0, expect.stringMatching(/: PASSED/)]);
    expect(readFileSync(junit, 'utf8')).toMatch(/<testsuites name=/);
    const failed = cli('cli/fails.test.mjs');
    expect([failed.status, failed.stdout]).toEqual([1, expect.stringMatching(/FAILED cli\/fails\.test\.mjs[\s\S]*as it should/)]);
    const error = cli('nothing/*.test.mjs');
    expect([error.status, error.stderr]).toEqual([2, expect.stringMatching(/tests\[0\]: matches no file/)]);
  });
});
