import type { JobsOptions, WorkerOptions } from 'bullmq';
import type { Retention } from '@fleet/config';
import { isCiQueue, type Task, toQueuePriority } from '@fleet/contracts';

/**
 * BullMQ options for one task: its id, flipped priority, attempts (with exponential backoff when there is a
 * retry). Only what differs per task: every retained job keeps its options, so retention lives on the
 * workers (`retentionOptions`), and a failed attempt's entry in the job's history is bounded by its attempts.
 */
export function taskJobOptions(id: string, task: Task, queue?: string): JobsOptions {
  return {
    jobId: id,
    // A CI build's queue serves one run, whose record keeps every attempt: its jobs go once they end.
    ...(queue !== undefined && isCiQueue(queue) && { removeOnComplete: true, removeOnFail: true }),
    priority: toQueuePriority(task.priority),
    attempts: task.max_attempts,
    ...(task.max_attempts > 1 && { backoff: { type: 'exponential', delay: task.retry_backoff_ms } }),
  };
}

/** How long finished tasks are kept, as every worker applies it when it records an outcome. */
export function retentionOptions(retention: Retention): Pick<WorkerOptions, 'removeOnComplete' | 'removeOnFail'> {
  return {
    removeOnComplete: { age: retention.completedAgeS, count: retention.completedCount },
    removeOnFail: { age: retention.failedAgeS, count: retention.failedCount },
  };
}
