import {
  boundFailure,
  PERMANENT_FAILURES,
  type QueuedTask,
  type TaskFailure,
  type TaskResult,
  type TestCase,
  type TimingEvent,
} from '@fleet/contracts';
import { attemptStatus, type RunAttempt } from './run-outcome.js';

/** What a worker records of one attempt: its timing event and, for a task of a run, its record in the run. */
export interface AttemptOutcome {
  event: TimingEvent;
  run?: { id: string; attempt: RunAttempt };
}

/** The queue's facts about the attempt (BullMQ's job, reduced to what the outcome depends on). */
export interface AttemptFacts {
  taskId: string;
  /** Attempts that ended before this one. */
  attemptsMade: number;
  /** Starts, this one included (a stalled run picked up again counts again). */
  attemptsStarted: number;
  maxAttempts: number;
  queuedAt: number;
  startedAt: number;
  finishedAt: number;
  pool: string;
  workerId: string;
}

/** Whether a failed attempt is the task's last: a permanent failure (a bad payload) or no attempts left. */
export const isFinalFailure = (failure: TaskFailure, facts: Pick<AttemptFacts, 'attemptsMade' | 'maxAttempts'>): boolean =>
  PERMANENT_FAILURES.has(failure.reason) || facts.attemptsMade + 1 >= facts.maxAttempts;

/**
 * The outcome of an attempt that ran to its end, completed (`result`) or failed (`failure`). An attempt
 * abandoned because its lock was lost has no outcome here: it records nothing, and runs again elsewhere.
 */
export function attemptOutcome(
  facts: AttemptFacts,
  task: QueuedTask,
  o: { result: TaskResult; cases?: TestCase[] } | { failure: TaskFailure },
): AttemptOutcome & { final: boolean } {
  const failure = 'failure' in o ? o.failure : undefined;
  const result = 'result' in o ? o.result : undefined;
  const cases = 'failure' in o ? o.failure.cases : o.cases;
  const final = failure ? isFinalFailure(failure, facts) : true;
  const reason = failure?.reason;
  const event: TimingEvent = {
    task_id: facts.taskId,
    task_type: task.type,
    pool: facts.pool,
    worker_id: facts.workerId,
    // Counts every start, a stalled run picked up again included: one event per (task, attempt).
    attempt: Math.max(facts.attemptsStarted, 1),
    outcome: !failure ? 'completed' : reason === 'timeout' ? 'timeout' : 'failed',
    final,
    queued_at: facts.queuedAt,
    started_at: facts.startedAt,
    finished_at: facts.finishedAt,
    wait_ms: Math.max(0, facts.startedAt - facts.queuedAt),
    run_ms: Math.max(0, facts.finishedAt - facts.startedAt),
    metrics: result?.metrics ?? failure?.metrics ?? {},
    labels: task.labels,
    ...(reason && { reason }),
    ...(task.type === 'test' && { test_file: task.config.test_file }),
  };
  if (!task.run) return { event, final };
  const bounded = failure && boundFailure(failure);
  const tail = bounded?.output_tail ?? result?.output_tail;
  const attempt: RunAttempt = {
    key: task.run.key,
    attempt: facts.attemptsMade + 1,
    status: attemptStatus(reason),
    ...(reason && { reason }),
    final,
    duration_ms: result?.duration_ms ?? failure?.duration_ms ?? event.run_ms,
    worker_id: facts.workerId,
    started_at: facts.startedAt,
    finished_at: facts.finishedAt,
    ...(bounded && { message: bounded.message }),
    ...(tail !== undefined && { output_tail: tail }),
    ...(cases && { cases }),
    // Recorded with the attempt (its cases are kept apart), so the file's state is known without reading them.
    ...(!reason && cases && cases.length > 0 && cases.every((c) => c.status === 'skipped') && { skipped: true }),
  };
  return { event, run: { id: task.run.id, attempt }, final };
}
