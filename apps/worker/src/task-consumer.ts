import { Inject, Injectable, Logger } from '@nestjs/common';
import { type Job, type Processor, WaitingError, Worker, type WorkerOptions } from 'bullmq';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { describeFieldErrors, parseQueuedTask, prepareQueuedTaskParser, type QueuedTask, type TaskResult, type TestCase } from '@fleet/contracts';
import { type AttemptFacts, attemptOutcome } from '@fleet/runs';
import { retentionOptions } from '@fleet/redis';
import { LockLostError, LockWatch } from './lock-watch.js';
import { failureOf, taskFailure } from '@fleet/redis';
import { TaskExecutor } from './task-executor.js';
import { OutcomeWriter } from './outcome-writer.js';
import { AppMetrics } from '@fleet/metrics';
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
        throw await this.handBack(job);
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
      const { final, ...outcome } = attemptOutcome(this.facts(job), task, { failure });
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
    const { final: _final, ...outcome } = attemptOutcome(this.facts(job), task, executed);
    await this.outcomes.write(outcome, attempt.signal);
    this.completed++;
    this.attemptsTotal.inc({ pool: this.settings.pool, type: task.type, outcome: 'completed' });
    this.logger.debug({ msg: 'task completed', task_id: ctx.taskId, attempt: outcome.event.attempt, run_ms: outcome.event.run_ms });
    return executed.result;
  }

  /**
   * An abandoned attempt is never recorded as failed or completed by this worker. While its lock is still this
   * worker's (a pause longer than 4/5 of the lock, shorter than the lock), the task goes back to its queue at
   * once; when another worker holds the lock, or it has expired, the handing back is refused and the stall check
   * or that worker has it. Either way BullMQ is told with a WaitingError, which it leaves alone.
   */
  private async handBack(job: Job<unknown, TaskResult>): Promise<WaitingError> {
    try {
      if (job.token) await job.moveToWait(job.token);
    } catch {
      // not this worker's any more: nothing to hand back
    }
    return new WaitingError();
  }

  /** The queue's facts about this attempt, for the pure outcome (`attemptOutcome`). */
  private facts(job: Job): AttemptFacts {
    const finishedAt = Date.now();
    return {
      taskId: job.id as string,
      attemptsMade: job.attemptsMade,
      attemptsStarted: job.attemptsStarted,
      maxAttempts: job.opts.attempts ?? 1,
      queuedAt: job.timestamp,
      startedAt: job.processedOn ?? finishedAt,
      finishedAt,
      pool: this.settings.pool,
      workerId: this.settings.workerId,
    };
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
