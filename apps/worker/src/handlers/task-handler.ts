import { type FailureReason, tail, type Task, type WorkerTemplate } from '@fleet/contracts';
import { EXIT_NOT_STARTED, type RunOutcome, runProcess } from '../process-runner.js';
import { taskFailure } from '../task-failure.error.js';

/** What a handler needs to run one attempt of one task. */
export interface TaskContext {
  taskId: string;
  /** 1 for the first attempt, counting failed attempts before this one. */
  attempt: number;
  workerId: string;
  pool: string;
  template: WorkerTemplate;
  /** Aborted on timeout; a handler stops its work (and every process it started) when it fires. */
  signal: AbortSignal;
  killGraceMs: number;
}

/** A successful attempt; a failed one throws `taskFailure(...)`. */
export interface HandlerOutput {
  outcome: 'passed' | 'completed';
  duration_ms: number;
  exit_code?: number;
  output_tail?: string;
  metrics: Record<string, number>;
}

export interface TaskHandler<T extends Task = Task> {
  readonly type: T['type'];
  run(task: T, ctx: TaskContext): Promise<HandlerOutput>;
}

/** The bounded tail of output kept in results and errors. */
export const OUTPUT_TAIL_CHARS = 4096;

/** Values every runner command may use: `{task_id}`, `{attempt}`, `{timeout_ms}`, `{worker_id}`, `{pool}`. */
export function commonPlaceholders(task: Task, ctx: TaskContext): Record<string, string> {
  return { task_id: ctx.taskId, attempt: String(ctx.attempt), timeout_ms: String(task.timeout_ms), worker_id: ctx.workerId, pool: ctx.pool };
}

/** Runs a filled template command in the pool's workdir, under the task's abort signal. */
export function runCommand(argv: readonly string[], ctx: TaskContext): Promise<RunOutcome> {
  const env = { ...process.env, FLEET_TASK_ID: ctx.taskId, FLEET_ATTEMPT: String(ctx.attempt), FLEET_WORKER_ID: ctx.workerId };
  return runProcess({ argv, cwd: ctx.template.workdir, env, signal: ctx.signal, killGraceMs: ctx.killGraceMs });
}

/** The failure of a command that exited non-zero, told apart from one that could not be started at all. */
export function commandFailure(run: RunOutcome, program: string, reason: FailureReason, what: string): Error {
  const output_tail = tail(run.output.text(), OUTPUT_TAIL_CHARS);
  const notStarted = run.exitCode === EXIT_NOT_STARTED && /cannot start /.test(output_tail);
  return taskFailure({
    reason: notStarted ? 'spawn_failed' : reason,
    message: notStarted ? `runner ${program} could not be started` : `${what} exited with code ${run.exitCode}`,
    exit_code: run.exitCode,
    output_tail,
    duration_ms: Math.round(run.durationMs),
  });
}
