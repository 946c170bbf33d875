import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import type { TaskContext } from './handlers/task-handler.js';
import { LockWatch } from './lock-watch.js';
import { ProcessGuard } from './process-guard-client.js';
import { type RunOutcome, type RunRequest, runProcess, type SessionFile } from '@fleet/exec';
import type { WarmMode } from '@fleet/contracts';
import { WarmRunners } from './warm-runners.js';
import { ProgramLauncher } from './program-launcher.js';
import { TASK_COOKIE_VAR, WORKER_COOKIE_VAR } from '@fleet/exec';

/**
 * Runs one filled template command for one attempt: in the pool's workdir (or a commit's checkout), marked with a fresh attempt
 * cookie and the worker's cookie, in the attempt's cgroup when there is one, tracked by the guard until it
 * ends (with the task's lock deadline), stopped with the attempt's signal.
 */
@Injectable()
export class CommandRunner {
  /**
   * The worker's environment, read once: the worker never changes its own, and spreading `process.env` (each
   * variable a call into the runtime) cost 60 µs an attempt against 8 for a plain object.
   */
  private readonly baseEnv: NodeJS.ProcessEnv = { ...process.env };

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly guard: ProcessGuard,
    private readonly locks: LockWatch,
    private readonly warm: WarmRunners,
    private readonly launcher: ProgramLauncher,
  ) {}

  /**
   * `at`: the folder to run in (a commit's checkout) and variables to add; the pool's workdir by default.
   * `warm`: run a pytest command in a warm server (forked from a Python that imported pytest once) when it is
   * one the server reproduces and one can be had; otherwise, and for anything else, a process of its own.
   * `'session'`: inside a pytest session server (`file`: the file and JUnit path the command names).
   */
  async run(
    argv: readonly string[],
    ctx: TaskContext,
    at?: { cwd: string; env: Record<string, string> },
    warm: WarmMode = false,
    file?: SessionFile,
  ): Promise<RunOutcome> {
    const cookie = randomBytes(16).toString('hex');
    const env = {
      ...this.baseEnv,
      ...at?.env,
      FLEET_TASK_ID: ctx.taskId,
      FLEET_ATTEMPT: String(ctx.attempt),
      FLEET_WORKER_ID: ctx.workerId,
      [TASK_COOKIE_VAR]: cookie,
      [WORKER_COOKIE_VAR]: this.guard.workerCookie,
    };
    const launcher = warm ? undefined : await this.launcher.get();
    const req: RunRequest = {
      argv,
      cwd: at?.cwd ?? ctx.template.workdir,
      env,
      signal: ctx.signal,
      killGraceMs: this.settings.killGraceMs,
      cookie,
      ...(this.guard.cgroup && { cgroupParent: this.guard.cgroup }),
      onStart: (tree) => this.guard.track(ctx.taskId, tree, this.locks.safeUntil(ctx.taskId)),
      ...(launcher && { launcher }),
    };
    try {
      return await (warm ? this.warm.pool.run(req, warm === 'session' ? file : undefined) : runProcess(req));
    } finally {
      this.guard.untrack(ctx.taskId);
    }
  }
}
