import { Injectable } from '@nestjs/common';
import type { Task, TaskResult, TaskType } from '@fleet/contracts';
import { BenchmarkTaskHandler } from './handlers/benchmark-task.handler.js';
import { SyntheticTaskHandler } from './handlers/synthetic-task.handler.js';
import type { TaskContext, TaskHandler } from './handlers/task-handler.js';
import { TestTaskHandler } from './handlers/test-task.handler.js';
import { failureOf, taskFailure } from './task-failure.error.js';

class TaskTimeout extends Error {}

/** Runs a task through the handler registered for its type, under its `timeout_ms`. */
@Injectable()
export class TaskExecutor {
  private readonly handlers: ReadonlyMap<TaskType, TaskHandler>;

  constructor(test: TestTaskHandler, benchmark: BenchmarkTaskHandler, synthetic: SyntheticTaskHandler) {
    this.handlers = new Map<TaskType, TaskHandler>(([test, benchmark, synthetic] as TaskHandler[]).map((h) => [h.type, h]));
  }

  /**
   * Resolves with the result, or rejects with a task failure. A timeout aborts the handler, which stops
   * its process tree; the attempt then fails with reason `timeout` and whatever output there was.
   */
  async execute(task: Task, ctx: Omit<TaskContext, 'signal'>): Promise<TaskResult> {
    const handler = this.handlers.get(task.type);
    if (!handler) throw taskFailure({ reason: 'invalid_task', message: `no handler for task type ${task.type}` });
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new TaskTimeout()), task.timeout_ms);
    const started = performance.now();
    try {
      const out = await handler.run(task, { ...ctx, signal: timeout.signal });
      return { ...out, worker_id: ctx.workerId };
    } catch (err) {
      if (timeout.signal.aborted) {
        const inner = failureOf(err);
        throw taskFailure({
          reason: 'timeout',
          message: `exceeded timeout_ms ${task.timeout_ms}; its process tree was stopped`,
          duration_ms: Math.round(performance.now() - started),
          ...(inner.output_tail !== undefined && { output_tail: inner.output_tail }),
          ...(inner.exit_code !== undefined && { exit_code: inner.exit_code }),
        });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}
