import type { Task, WorkerTemplate } from '@fleet/contracts';

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

export function runnerEnv(ctx: TaskContext): NodeJS.ProcessEnv {
  return { ...process.env, FLEET_TASK_ID: ctx.taskId, FLEET_ATTEMPT: String(ctx.attempt), FLEET_WORKER_ID: ctx.workerId };
}
