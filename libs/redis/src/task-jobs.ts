import type { JobsOptions } from 'bullmq';
import type { Retention } from '@fleet/config';
import { MAX_ATTEMPTS_MAX, type Task, toQueuePriority } from '@fleet/contracts';

/** BullMQ options for one task: its id, flipped priority, attempts with exponential backoff, retention. */
export function taskJobOptions(id: string, task: Task, retention: Retention): JobsOptions {
  return {
    jobId: id,
    priority: toQueuePriority(task.priority),
    attempts: task.max_attempts,
    backoff: { type: 'exponential', delay: task.retry_backoff_ms },
    removeOnComplete: { age: retention.completedAgeS, count: retention.completedCount },
    removeOnFail: { age: retention.failedAgeS, count: retention.failedCount },
    // One entry per failed attempt (the worker's errors are one line each): the task's attempt history.
    stackTraceLimit: MAX_ATTEMPTS_MAX,
  };
}
