import { UnrecoverableError } from 'bullmq';
import { encodeFailure, PERMANENT_FAILURES, type TaskFailure } from '@fleet/contracts';

/**
 * Thrown by a handler when an attempt fails. Its message is the encoded `TaskFailure`; its stack is the
 * same text, so BullMQ's per-attempt `stacktrace` becomes the list of attempt errors clients read.
 */
export class TaskFailureError extends Error {
  constructor(readonly failure: TaskFailure) {
    super(encodeFailure(failure));
    this.name = 'TaskFailureError';
    this.stack = this.message;
  }
}

/** A failure no retry can change (e.g. an invalid payload): BullMQ fails the task at once. */
export class PermanentTaskFailureError extends UnrecoverableError {
  constructor(readonly failure: TaskFailure) {
    super(encodeFailure(failure));
    this.stack = this.message;
  }
}

export function taskFailure(failure: TaskFailure): Error {
  return PERMANENT_FAILURES.has(failure.reason) ? new PermanentTaskFailureError(failure) : new TaskFailureError(failure);
}

export function failureOf(err: unknown): TaskFailure {
  if (err instanceof TaskFailureError || err instanceof PermanentTaskFailureError) return err.failure;
  return { reason: 'worker_error', message: err instanceof Error ? err.message : String(err) };
}
