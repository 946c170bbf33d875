import { Injectable } from '@nestjs/common';
import { countCases, type Task, type TaskResult, type TaskType, type TestCase } from '@fleet/contracts';
import { BenchmarkTaskHandler } from './handlers/benchmark-task.handler.js';
import { SyntheticTaskHandler } from './handlers/synthetic-task.handler.js';
import type { Prepared, TaskContext, TaskHandler } from './handlers/task-handler.js';
import { TestTaskHandler } from './handlers/test-task.handler.js';
import { LockLostError } from './lock-watch.js';
import { failureOf, taskFailure } from '@fleet/redis';

class TaskTimeout extends Error {}

/** Runs a task through the handler registered for its type, under its `timeout_ms`. */
@Injectable()
export class TaskExecutor {
  private readonly handlers: ReadonlyMap<TaskType, TaskHandler>;

  constructor(test: TestTaskHandler, benchmark: BenchmarkTaskHandler, synthetic: SyntheticTaskHandler) {
    this.handlers = new Map<TaskType, TaskHandler>(([test, benchmark, synthetic] as TaskHandler[]).map((h) => [h.type, h]));
  }

  /**
   * Resolves with the result, or rejects with a task failure. The attempt's controller is aborted on
   * timeout (here) or when its lock is lost (by the consumer); either stops the handler and its process
   * tree. A timeout fails the attempt with reason `timeout` and whatever output there was; a lost lock
   * rejects with the LockLostError the controller was aborted with.
   */
  async execute(task: Task, ctx: Omit<TaskContext, 'signal'>, attempt: AbortController): Promise<{ result: TaskResult; cases?: TestCase[] }> {
    const handler = this.handlers.get(task.type);
    if (!handler) throw taskFailure({ reason: 'invalid_task', message: `no handler for task type ${task.type}` });
    let prepared: Prepared | undefined;
    try {
      prepared = await handler.prepare?.(task, { ...ctx, signal: attempt.signal });
    } catch (err) {
      // A lost lock stopped the preparation: the attempt is abandoned, whatever the preparation threw.
      if (attempt.signal.reason instanceof LockLostError) throw attempt.signal.reason;
      throw err;
    }
    if (attempt.signal.reason instanceof LockLostError) {
      await prepared?.release();
      throw attempt.signal.reason;
    }
    const timer = setTimeout(() => attempt.abort(new TaskTimeout()), task.timeout_ms);
    const started = performance.now();
    try {
      const { cases, ...out } = await handler.run(task, { ...ctx, signal: attempt.signal }, prepared);
      if (attempt.signal.reason instanceof LockLostError) throw attempt.signal.reason;
      return { result: { ...out, worker_id: ctx.workerId, ...(cases && { case_counts: countCases(cases) }) }, ...(cases && { cases }) };
    } catch (err) {
      const why: unknown = attempt.signal.reason;
      if (why instanceof LockLostError) throw why;
      if (why instanceof TaskTimeout) {
        const inner = failureOf(err);
        throw taskFailure({
          reason: 'timeout',
          message: `exceeded timeout_ms ${task.timeout_ms}; its process tree was stopped`,
          duration_ms: Math.round(performance.now() - started),
          ...(inner.output_tail !== undefined && { output_tail: inner.output_tail }),
          ...(inner.exit_code !== undefined && { exit_code: inner.exit_code }),
          ...(inner.cases && { cases: inner.cases }),
        });
      }
      throw err;
    } finally {
      clearTimeout(timer);
      await prepared?.release();
    }
  }
}
