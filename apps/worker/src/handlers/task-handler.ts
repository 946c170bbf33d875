import { type FailureReason, tail, type Task, type TestCase, type WorkerTemplate } from '@fleet/contracts';
import type { RunOutcome } from '@fleet/exec';
import { taskFailure } from '@fleet/redis';

/** What a handler needs to run one attempt of one task. */
export interface TaskContext {
  taskId: string;
  /** 1 for the first attempt, counting failed attempts before this one. */
  attempt: number;
  workerId: string;
  pool: string;
  template: WorkerTemplate;
  /** Aborted on timeout or when the task's lock is lost; a handler stops its work (and every process it started) when it fires. */
  signal: AbortSignal;
}

/** A successful attempt; a failed one throws `taskFailure(...)`. */
export interface HandlerOutput {
  outcome: 'passed' | 'completed';
  duration_ms: number;
  exit_code?: number;
  output_tail?: string;
  metrics: Record<string, number>;
  /** The runner's test cases, for the run's record (not stored with the task's result). */
  cases?: TestCase[];
}

/** What an attempt runs in when its task names a source: the commit's checkout, held until `release`. */
export interface Prepared {
  cwd: string;
  env: Record<string, string>;
  release(): Promise<void>;
}

export interface TaskHandler<T extends Task = Task> {
  readonly type: T['type'];
  /**
   * Work before the attempt's clock starts (fetching a commit, its setup): bounded by its own limits, stopped
   * by the attempt's signal when the lock is lost. Not part of `timeout_ms`, which is the test's own.
   */
  prepare?(task: T, ctx: TaskContext): Promise<Prepared | undefined>;
  run(task: T, ctx: TaskContext, prepared?: Prepared): Promise<HandlerOutput>;
}

/** The bounded tail of output kept in results and errors. */
export const OUTPUT_TAIL_CHARS = 4096;

/** Values every runner command may use: `{task_id}`, `{attempt}`, `{timeout_ms}`, `{worker_id}`, `{pool}`. */
export function commonPlaceholders(task: Task, ctx: TaskContext): Record<string, string> {
  return { task_id: ctx.taskId, attempt: String(ctx.attempt), timeout_ms: String(task.timeout_ms), worker_id: ctx.workerId, pool: ctx.pool };
}

/** The failure of a command that exited non-zero, told apart from one that could not be started at all. */
export function commandFailure(run: RunOutcome, program: string, reason: FailureReason, what: string): Error {
  const output_tail = tail(run.output.text(), OUTPUT_TAIL_CHARS);
  return taskFailure({
    reason: run.started ? reason : 'spawn_failed',
    message: run.started ? `${what} exited with code ${run.exitCode}` : `runner ${program} could not be started`,
    exit_code: run.exitCode,
    output_tail,
    duration_ms: Math.round(run.durationMs),
  });
}
