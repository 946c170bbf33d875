import type { QueuedTask, TaskFailure, TaskResult, TestCase } from '@fleet/contracts';
import { type AttemptFacts, attemptOutcome } from './attempt-outcome.js';

const facts = (o: Partial<AttemptFacts> = {}): AttemptFacts => ({
  taskId: 'cpu.t1',
  attemptsMade: 0,
  attemptsStarted: 1,
  maxAttempts: 1,
  queuedAt: 1_000,
  startedAt: 1_200,
  finishedAt: 1_700,
  pool: 'cpu',
  workerId: 'w1',
  ...o,
});
const synthetic = { type: 'synthetic', name: 's', labels: { model_name: 'm' }, submitted_by: 'ci' } as unknown as QueuedTask;
const test = {
  type: 'test',
  name: 't',
  labels: {},
  config: { test_file: 'a.test.mjs' },
  submitted_by: 'ci',
  run: { id: 'r1', key: 'a.test.mjs' },
} as unknown as QueuedTask;
const result = (o: Partial<TaskResult> = {}): TaskResult => ({ outcome: 'completed', worker_id: 'w1', duration_ms: 1, metrics: {}, ...o });
const failure = (reason: TaskFailure['reason'], extra: Partial<TaskFailure> = {}): TaskFailure => ({ reason, message: `${reason}!`, ...extra });

describe('attemptOutcome: what a worker records of an attempt that ran to its end', () => {
  it.each([
    ['completed', facts(), { result: result({ duration_ms: 480, metrics: { x: 1 } }) }, { outcome: 'completed', final: true, reason: undefined }],
    [
      'failed with attempts left: not final',
      facts({ maxAttempts: 3 }),
      { failure: failure('test_failed') },
      { outcome: 'failed', final: false, reason: 'test_failed' },
    ],
    [
      'failed on its last attempt: final',
      facts({ attemptsMade: 2, attemptsStarted: 3, maxAttempts: 3 }),
      { failure: failure('test_failed') },
      { outcome: 'failed', final: true, reason: 'test_failed' },
    ],
    [
      'an invalid payload is final at once',
      facts({ maxAttempts: 5 }),
      { failure: failure('invalid_task') },
      { outcome: 'failed', final: true, reason: 'invalid_task' },
    ],
    [
      'a timeout is its own outcome',
      facts({ maxAttempts: 2 }),
      { failure: failure('timeout') },
      { outcome: 'timeout', final: false, reason: 'timeout' },
    ],
  ] as Array<[string, AttemptFacts, Parameters<typeof attemptOutcome>[2], object]>)('%s', (_name, f, o, expected) => {
    const { event, final } = attemptOutcome(f, synthetic, o);
    expect({ outcome: event.outcome, final, reason: event.reason }).toEqual(expected);
    expect(event.final).toBe(final);
  });

  it('times the attempt from the queue’s facts, and counts a stalled run picked up again as another start', () => {
    const { event } = attemptOutcome(facts({ attemptsMade: 0, attemptsStarted: 2 }), synthetic, { result: result() });
    expect(event).toMatchObject({
      attempt: 2,
      queued_at: 1_000,
      started_at: 1_200,
      finished_at: 1_700,
      wait_ms: 200,
      run_ms: 500,
      labels: { model_name: 'm' },
    });
  });

  it('records a run’s attempt, with its cases, its bounded failure message and output tail', () => {
    const long = 'x'.repeat(10_000);
    const cases: TestCase[] = [{ name: 'adds', classname: 'a.test.mjs', status: 'failed', time_s: 0.003 }];
    const { run, event } = attemptOutcome(facts({ maxAttempts: 2 }), test, {
      failure: failure('test_failed', { output_tail: long, cases, duration_ms: 42 }),
    });
    expect(event.test_file).toBe('a.test.mjs');
    expect(run?.id).toBe('r1');
    expect(run?.attempt).toMatchObject({ key: 'a.test.mjs', attempt: 1, status: 'failed', final: false, duration_ms: 42, worker_id: 'w1', cases });
    expect(run?.attempt.output_tail?.length).toBeLessThan(long.length);
    expect(run?.attempt.message).toBe('test_failed!');
  });

  it('a task outside a run records only its timing event', () => {
    expect(attemptOutcome(facts(), synthetic, { result: result() }).run).toBeUndefined();
  });
});
