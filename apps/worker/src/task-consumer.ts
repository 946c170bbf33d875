import { Inject, Injectable, Logger } from '@nestjs/common';
import { type Job, type Processor, Worker, type WorkerOptions } from 'bullmq';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import {
  boundFailure,
  describeFieldErrors,
  parseQueuedTask,
  prepareQueuedTaskParser,
  PERMANENT_FAILURES,
  type QueuedTask,
  type TaskFailure,
  type TaskResult,
  type TestCase,
  type TimingEvent,
} from '@fleet/contracts';
import { attemptStatus, type RunAttempt } from '@fleet/runs';
import { retentionOptions } from '@fleet/redis';
import { LockLostError, LockWatch } from './lock-watch.js';
import { failureOf, taskFailure } from './task-failure.error.js';
import { TaskExecutor } from './task-executor.js';
import { type AttemptOutcome, OutcomeWriter } from './outcome-writer.js';
import { AppMetrics } from '@fleet/ops';
import type { Counter } from 'prom-client';
import { WorkerRedis } from './worker-redis.js';

/** A BullMQ Worker that tells the lock watch when each lock renewal was sent and whether it held. */
class LockAwareWorker extends Worker<unknown, TaskResult> {
  constructor(
    name: string,
    processor: Processor<unknown, TaskResult>,
    opts: WorkerOptions,
    private readonly locks: LockWatch,
  ) {
    super(name, processor, opts);
  }

  override async extendJobLocks(jobIds: string[], tokens: string[], duration: number): Promise<string[]> {
    const sentAt = Date.now();
    const refused = await super.extendJobLocks(jobIds, tokens, duration);
    for (const id of jobIds) if (!refused.includes(id)) this.locks.renewed(id, sentAt);
    return refused;
  }
}

/**
 * The worker's BullMQ consumer. Each job's payload is validated again before it runs (a bad payload
 * fails that task, never the worker). Each finished attempt's timing event is written before BullMQ
 * records the outcome, so no recorded attempt lacks its event. An attempt whose lock is lost (another
 * worker may be running it now) is abandoned: its processes are stopped and it records nothing.
 */
@Injectable()
export class TaskConsumer {
  private readonly logger = new Logger(TaskConsumer.name);
  private worker: Worker<unknown, TaskResult> | undefined;
  readonly current = new Set<string>();
  completed = 0;
  failed = 0;
  abandoned = 0;
  /** Attempts whose handler is still running, and who waits for there to be none. */
  private executing = 0;
  private idleWaiters: Array<() => void> = [];
  /** True from start until drain: the worker takes new tasks. */
  consuming = false;
  private readonly attemptsTotal: Counter<'pool' | 'type' | 'outcome'>;

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly redis: WorkerRedis,
    private readonly executor: TaskExecutor,
    private readonly outcomes: OutcomeWriter,
    private readonly locks: LockWatch,
    @Inject(AppMetrics) metrics: AppMetrics,
  ) {
    this.attemptsTotal = metrics.counter('fleet_worker_attempts_total', 'Task attempts this worker finished, by pool, task type and outcome', [
      'pool',
      'type',
      'outcome',
    ]);
  }

  start(): void {
    prepareQueuedTaskParser();
    const s = this.settings;
    // The processor takes one argument on purpose: BullMQ then creates no AbortController per job (a
    // measurable cost at thousands of tasks per second); the attempt's controller is our own.
    this.worker = new LockAwareWorker(
      s.pool,
      (job) => this.process(job),
      {
        connection: this.redis.queueConnection,
        prefix: this.redis.keys.queuePrefix(s.pool),
        name: s.workerId,
        concurrency: s.concurrency,
        lockDuration: s.lockMs,
        stalledInterval: s.stalledIntervalMs,
        maxStalledCount: 2,
        ...retentionOptions(s.retention),
      },
      this.locks,
    );
    this.worker.on('lockRenewalFailed', (ids) => {
      for (const id of ids) this.locks.lost(id, 'Redis refused its renewal (another worker holds it, or it expired)');
    });
    this.worker.on('error', (err) => this.logger.warn(`queue error: ${err.message}`));
    this.logger.log(`worker ${s.workerId} consuming pool ${s.pool} with concurrency ${s.concurrency}`);
    this.consuming = true;
  }

  private async process(job: Job<unknown, TaskResult>): Promise<TaskResult> {
    const id = job.id as string;
    this.current.add(id);
    const attempt = new AbortController();
    this.locks.begin(id, job.processedOn ?? Date.now(), (err) => attempt.abort(err));
    try {
      const parsed = parseQueuedTask(job.data);
      if (!parsed.ok) throw taskFailure({ reason: 'invalid_task', message: `invalid task payload: ${describeFieldErrors(parsed.errors)}` });
      return await this.run(job, parsed.value, attempt);
    } catch (err) {
      if (err instanceof LockLostError) {
        this.abandoned++;
        this.logger.warn({ msg: `${err.message}; abandoned (its processes were stopped; another worker will run it)`, task_id: id });
      }
      throw err;
    } finally {
      this.locks.end(id);
      this.current.delete(id);
    }
  }

  private async run(job: Job<unknown, TaskResult>, task: QueuedTask, attempt: AbortController): Promise<TaskResult> {
    const ctx = {
      taskId: job.id as string,
      attempt: job.attemptsMade + 1,
      workerId: this.settings.workerId,
      pool: this.settings.pool,
      template: this.settings.template,
    };
    let executed: { result: TaskResult; cases?: TestCase[] };
    this.executing++;
    try {
      executed = await this.executor.execute(task, ctx, attempt);
    } catch (err) {
      this.doneExecuting();
      if (err instanceof LockLostError) throw err;
      const failure = failureOf(err);
      const final = PERMANENT_FAILURES.has(failure.reason) || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const outcome = this.outcome(job, task, { failure, final, cases: failure.cases });
      await this.outcomes.write(outcome, attempt.signal);
      this.failed++;
      this.attemptsTotal.inc({ pool: this.settings.pool, type: task.type, outcome: outcome.event.outcome });
      this.logger.log({
        msg: `task ${final ? 'failed' : 'failed, will retry'}: ${failure.reason}`,
        task_id: ctx.taskId,
        attempt: outcome.event.attempt,
        reason: failure.reason,
        run_ms: outcome.event.run_ms,
      });
      throw err;
    }
    this.doneExecuting();
    const outcome = this.outcome(job, task, { result: executed.result, final: true, cases: executed.cases });
    await this.outcomes.write(outcome, attempt.signal);
    this.completed++;
    this.attemptsTotal.inc({ pool: this.settings.pool, type: task.type, outcome: 'completed' });
    this.logger.debug({ msg: 'task completed', task_id: ctx.taskId, attempt: outcome.event.attempt, run_ms: outcome.event.run_ms });
    return executed.result;
  }

  /** The attempt's timing event and, for a task of a run, its record in the run. */
  private outcome(
    job: Job,
    task: QueuedTask,
    o: { result?: TaskResult; failure?: TaskFailure; final: boolean; cases: TestCase[] | undefined },
  ): AttemptOutcome {
    const finishedAt = Date.now();
    const startedAt = job.processedOn ?? finishedAt;
    const reason = o.failure?.reason;
    const event: TimingEvent = {
      task_id: job.id as string,
      task_type: task.type,
      pool: this.settings.pool,
      worker_id: this.settings.workerId,
      // Counts every start, a stalled run picked up again included: one event per (task, attempt).
      attempt: Math.max(job.attemptsStarted, 1),
      outcome: !o.failure ? 'completed' : reason === 'timeout' ? 'timeout' : 'failed',
      final: o.final,
      queued_at: job.timestamp,
      started_at: startedAt,
      finished_at: finishedAt,
      wait_ms: Math.max(0, startedAt - job.timestamp),
      run_ms: Math.max(0, finishedAt - startedAt),
      metrics: o.result?.metrics ?? o.failure?.metrics ?? {},
      labels: task.labels,
      ...(reason && { reason }),
      ...(task.type === 'test' && { test_file: task.config.test_file }),
    };
    if (!task.run) return { event };
    const failure = o.failure && boundFailure(o.failure);
    const attempt: RunAttempt = {
      key: task.run.key,
      attempt: job.attemptsMade + 1,
      status: attemptStatus(reason),
      ...(reason && { reason }),
      final: o.final,
      duration_ms: o.result?.duration_ms ?? o.failure?.duration_ms ?? event.run_ms,
      worker_id: this.settings.workerId,
      started_at: startedAt,
      finished_at: finishedAt,
      ...(failure && { message: failure.message }),
      ...((failure?.output_tail ?? o.result?.output_tail) !== undefined && { output_tail: failure?.output_tail ?? o.result?.output_tail }),
      ...(o.cases && { cases: o.cases }),
    };
    return { event, run: { id: task.run.id, attempt } };
  }

  private doneExecuting(): void {
    if (--this.executing > 0) return;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /**
   * Takes no new tasks and lets the held ones run to their end (each bounded by its own timeout); then gives
   * the recording of their outcomes `graceMs`. False when that did not finish in time (Redis away): those
   * tasks keep their place in Redis and run again elsewhere once their locks expire.
   */
  async drain(graceMs: number): Promise<boolean> {
    if (!this.worker) return true;
    this.consuming = false;
    const closed = this.worker.close().then(() => true);
    if (this.executing > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
    try {
      return await Promise.race([closed, grace]);
    } finally {
      clearTimeout(timer);
    }
  }
}
