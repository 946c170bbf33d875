import type { Job } from 'bullmq';
import {
  decodeFailure,
  fromQueuePriority,
  type QueuedTask,
  type Task,
  type TaskFailure,
  type TaskResult,
  type TaskState,
  toTaskState,
} from '@fleet/contracts';
import type { CancelledRecord } from './task-queue.repository.js';

/** A task as `GET /tasks/:id` shows it. Times are ISO strings; durations are milliseconds. */
export interface TaskView {
  id: string;
  name: string;
  type: Task['type'];
  pool: string;
  priority: number;
  state: TaskState;
  labels: Record<string, string>;
  /** The client that submitted it. */
  submitted_by: string;
  attempts: { made: number; started: number; max: number };
  worker_id: string | null;
  timings: {
    queued_at: string;
    started_at: string | null;
    finished_at: string | null;
    wait_ms: number | null;
    run_ms: number | null;
  };
  result: TaskResult | null;
  /** Why the task failed for good (state `failed`), or why its last attempt failed while it waits to retry. */
  error: TaskFailure | null;
  /** One entry per failed attempt, oldest first. */
  attempt_errors: TaskFailure[];
}

const iso = (ms: number | undefined | null) => (ms ? new Date(ms).toISOString() : null);

export function viewOfJob(job: Job<QueuedTask, TaskResult>, pool: string, queueState: string): TaskView {
  const state = toTaskState(queueState) ?? 'queued';
  const task = job.data;
  const started = job.processedOn ?? null;
  const finished = state === 'completed' || state === 'failed' ? (job.finishedOn ?? null) : null;
  const result = state === 'completed' ? (job.returnvalue ?? null) : null;
  return {
    id: job.id as string,
    name: task.name,
    type: task.type,
    pool,
    priority: task.priority ?? fromQueuePriority(job.priority),
    state,
    labels: task.labels ?? {},
    submitted_by: task.submitted_by ?? 'anonymous',
    attempts: { made: job.attemptsMade, started: job.attemptsStarted, max: job.opts.attempts ?? 1 },
    worker_id: result?.worker_id ?? job.processedBy ?? null,
    timings: {
      queued_at: iso(job.timestamp) as string,
      started_at: iso(started),
      finished_at: iso(finished),
      wait_ms: started ? started - job.timestamp : null,
      run_ms: started && finished ? finished - started : null,
    },
    result,
    error: state === 'completed' ? null : decodeFailure(job.failedReason),
    attempt_errors: (job.stacktrace ?? []).map((s) => decodeFailure(s)).filter((f): f is TaskFailure => f !== null),
  };
}

export function viewOfCancelled(c: CancelledRecord): TaskView {
  return {
    id: c.id,
    name: c.name,
    type: c.type,
    pool: c.pool,
    priority: c.priority,
    state: 'cancelled',
    labels: c.labels,
    submitted_by: c.submitted_by ?? 'anonymous',
    attempts: { made: 0, started: 0, max: 0 },
    worker_id: null,
    timings: { queued_at: iso(c.queued_at) as string, started_at: null, finished_at: iso(c.cancelled_at), wait_ms: null, run_ms: null },
    result: null,
    error: null,
    attempt_errors: [],
  };
}
