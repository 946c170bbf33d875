import { Inject, Injectable, Logger } from '@nestjs/common';
import { type Job, Worker } from 'bullmq';
import type { WorkerSettings } from '@fleet/config';
import { describeFieldErrors, parseTask, type Task, type TaskResult, type TimingEvent } from '@fleet/contracts';
import { failureOf, taskFailure } from './task-failure.error.js';
import { TaskExecutor } from './task-executor.js';
import { TimingsWriter } from './timings-writer.js';
import { WorkerRedis } from './worker-redis.js';
import { WORKER_SETTINGS } from './worker-settings.js';

interface Attempt {
  task: Task;
  finishedAt: number;
  metrics: Record<string, number>;
}

/**
 * The worker's BullMQ consumer. Each job's payload is validated again before it runs (a bad payload
 * fails that task, never the worker); every finished attempt becomes a timing event once BullMQ has
 * recorded its outcome.
 */
@Injectable()
export class TaskConsumer {
  private readonly logger = new Logger(TaskConsumer.name);
  private worker: Worker<unknown, TaskResult> | undefined;
  private readonly attempts = new WeakMap<Job, Attempt>();
  readonly current = new Set<string>();
  completed = 0;
  failed = 0;

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly redis: WorkerRedis,
    private readonly executor: TaskExecutor,
    private readonly timings: TimingsWriter,
  ) {}

  start(): void {
    const s = this.settings;
    // The processor takes one argument on purpose: BullMQ then creates no AbortController per job (a
    // measurable cost at thousands of tasks per second); timeouts are the executor's own.
    this.worker = new Worker<unknown, TaskResult>(s.pool, (job) => this.process(job), {
      connection: this.redis.connection,
      prefix: this.redis.keys.bullPrefix,
      name: s.workerId,
      concurrency: s.concurrency,
      lockDuration: s.lockMs,
      stalledInterval: s.stalledIntervalMs,
      maxStalledCount: 2,
    });
    this.worker.on('completed', (job) => this.record(job, undefined));
    this.worker.on('failed', (job, err) => job && this.record(job, err));
    this.worker.on('error', (err) => this.logger.warn(`queue error: ${err.message}`));
    this.logger.log(`worker ${s.workerId} consuming pool ${s.pool} with concurrency ${s.concurrency}`);
  }

  private async process(job: Job<unknown, TaskResult>): Promise<TaskResult> {
    const id = job.id as string;
    this.current.add(id);
    try {
      const parsed = parseTask(job.data);
      if (!parsed.ok) throw taskFailure({ reason: 'invalid_task', message: `invalid task payload: ${describeFieldErrors(parsed.errors)}` });
      const task = parsed.value;
      const attempt: Attempt = { task, finishedAt: 0, metrics: {} };
      this.attempts.set(job, attempt);
      const ctx = {
        taskId: id,
        attempt: job.attemptsMade + 1,
        workerId: this.settings.workerId,
        pool: this.settings.pool,
        template: this.settings.template,
        killGraceMs: this.settings.killGraceMs,
      };
      try {
        const result = await this.executor.execute(task, ctx);
        attempt.metrics = result.metrics;
        return result;
      } catch (err) {
        attempt.metrics = failureOf(err).metrics ?? {};
        throw err;
      } finally {
        attempt.finishedAt = Date.now();
      }
    } finally {
      this.current.delete(id);
    }
  }

  /** Called after BullMQ stored the attempt's outcome, so an event never reports what did not happen. */
  private record(job: Job, err: Error | undefined): void {
    if (err) this.failed++;
    else this.completed++;
    const attempt = this.attempts.get(job);
    if (!attempt) return; // refused payload, or a stall another worker's checker reported
    const failure = err ? failureOf(err) : undefined;
    const startedAt = job.processedOn ?? attempt.finishedAt;
    const event: TimingEvent = {
      task_id: job.id as string,
      task_type: attempt.task.type,
      pool: this.settings.pool,
      worker_id: this.settings.workerId,
      attempt: Math.max(job.attemptsStarted, 1),
      outcome: !failure ? 'completed' : failure.reason === 'timeout' ? 'timeout' : 'failed',
      final: !failure || job.finishedOn !== undefined,
      queued_at: job.timestamp,
      started_at: startedAt,
      finished_at: attempt.finishedAt,
      wait_ms: Math.max(0, startedAt - job.timestamp),
      run_ms: Math.max(0, attempt.finishedAt - startedAt),
      metrics: attempt.metrics,
      labels: attempt.task.labels,
      ...(failure && { reason: failure.reason }),
    };
    this.timings.append(event);
  }

  /** Takes no new tasks, waits for the held ones to finish, then closes. */
  async drain(): Promise<void> {
    await this.worker?.close();
  }
}
