import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeTimingEvent, type TimingEvent } from '@fleet/contracts';
import { isAlive, isolatedSuite, waitFor } from '@fleet/testing';
import { suiteCoordinator, waitForFinished } from './coordinator-harness.js';
import { seedConfigFiles } from './fixtures.js';

describe('failed, timed-out and retried tasks', () => {
  const suite = isolatedSuite('fail', seedConfigFiles());
  const coordinatorOf = suiteCoordinator(suite);
  const submit = async (task: object): Promise<string> => (await coordinatorOf().http.post('/tasks').send(task).expect(201)).body.id;
  const eventsOf = async (id: string): Promise<TimingEvent[]> =>
    (await suite.redis.xrange(suite.keys.timings, '-', '+'))
      .map(([, f]) => decodeTimingEvent(f))
      .flatMap((r) => (r.ok && r.event.task_id === id ? [r.event] : []));

  beforeAll(() => {
    suite.worker({ pool: 'cpu-worker', concurrency: 4 });
  });

  it('reports a failing test as failed with its exit code and output', async () => {
    const id = await submit({ type: 'test', name: 'broken', config: { test_file: 'fails.test.mjs' } });
    const [view] = await waitForFinished(coordinatorOf(), [id]);
    expect(view).toMatchObject({ state: 'failed', result: null, error: { reason: 'test_failed', exit_code: 1 }, attempts: { made: 1, max: 1 } });
    expect(view?.error?.output_tail).toMatch(/not ok 1 - fails/);
    expect(view?.attempt_errors).toHaveLength(1);
    await waitFor(async () => (await eventsOf(id)).length === 1, { what: 'the timing event' });
    expect(await eventsOf(id)).toEqual([expect.objectContaining({ outcome: 'failed', reason: 'test_failed', final: true, attempt: 1 })]);
  });

  it('kills a task over its timeout, with its whole process tree, and reports timeout', async () => {
    // The file must have started its grandchild before the timeout, which a loaded machine can delay past it:
    // then the task is submitted again with twice the timeout (what is tested is the tree's kill, not how fast
    // Node starts), at most four times.
    let id = '';
    for (let timeout = 1500, tries = 1; ; timeout *= 2, tries++) {
      id = await submit({ type: 'test', name: 'hangs', timeout_ms: timeout, config: { test_file: 'hangs.test.mjs' } });
      const [view] = await waitForFinished(coordinatorOf(), [id]);
      expect(view).toMatchObject({ state: 'failed', error: { reason: 'timeout', message: expect.stringContaining(`timeout_ms ${timeout}`) } });
      expect(view?.timings.run_ms).toBeGreaterThanOrEqual(timeout);
      if (existsSync(join(suite.config.path, `${id}.pid`)) || tries === 4) break;
    }
    // The grandchild the test started is gone too.
    const grandchild = Number(readFileSync(join(suite.config.path, `${id}.pid`), 'utf8'));
    expect(grandchild).toBeGreaterThan(0);
    await waitFor(() => !isAlive(grandchild), { what: `grandchild ${grandchild} to be killed`, timeoutMs: 5000 });
    await waitFor(async () => (await eventsOf(id)).length === 1, { what: 'the timing event' });
    expect(await eventsOf(id)).toEqual([expect.objectContaining({ outcome: 'timeout', reason: 'timeout', final: true })]);
  });

  it('retries a failing attempt with backoff and shows every attempt', async () => {
    const flaky = await submit({ type: 'synthetic', name: 'flaky', max_attempts: 3, retry_backoff_ms: 100, config: { fail_first_attempts: 2 } });
    const hopeless = await submit({
      type: 'synthetic',
      name: 'hopeless',
      max_attempts: 2,
      retry_backoff_ms: 100,
      config: { fail_first_attempts: 5 },
    });
    const [ok, bad] = await waitForFinished(coordinatorOf(), [flaky, hopeless]);
    expect(ok).toMatchObject({ state: 'completed', attempts: { made: 3, started: 3, max: 3 }, error: null });
    expect(ok?.attempt_errors.map((e) => e.reason)).toEqual(['synthetic_failure', 'synthetic_failure']);
    expect(ok?.attempt_errors[1]?.message).toMatch(/attempt 2/);
    expect(bad).toMatchObject({ state: 'failed', attempts: { made: 2, max: 2 }, error: { reason: 'synthetic_failure' } });

    await waitFor(async () => (await eventsOf(flaky)).length === 3, { what: 'three timing events' });
    expect((await eventsOf(flaky)).map((e) => [e.attempt, e.outcome, e.final])).toEqual([
      [1, 'failed', false],
      [2, 'failed', false],
      [3, 'completed', true],
    ]);
  });

  it('fails a task whose file does not exist at once, without retrying, and keeps the worker running', async () => {
    const id = await submit({ type: 'test', name: 'missing', max_attempts: 5, config: { test_file: 'nope/absent.test.mjs' } });
    const [view] = await waitForFinished(coordinatorOf(), [id]);
    expect(view).toMatchObject({
      state: 'failed',
      attempts: { made: 1 },
      error: { reason: 'invalid_task', message: expect.stringMatching(/does not exist/) },
    });
    const next = await submit({ type: 'test', name: 'fine', config: { test_file: 'passes.test.mjs' } });
    expect((await waitForFinished(coordinatorOf(), [next]))[0]).toMatchObject({ state: 'completed', result: { outcome: 'passed' } });
  });
});
