import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { Injectable } from '@nestjs/common';
import { extensionOf, fillArgv, tail, type TestTask } from '@fleet/contracts';
import { CommandRunner } from '../command-runner.js';
import { taskFailure } from '../task-failure.error.js';
import { commandFailure, commonPlaceholders, type HandlerOutput, OUTPUT_TAIL_CHARS, type TaskContext, type TaskHandler } from './task-handler.js';

/** The file's real path when it is inside `dir` (symlinks followed); null when it leads outside; undefined when absent. */
export function realPathWithin(dir: string, file: string): string | null | undefined {
  let real: string;
  try {
    real = realpathSync(resolve(dir, file));
  } catch {
    return undefined;
  }
  const rel = relative(realpathSync(dir), real);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? null : real;
}

/** Runs `config.test_file` with the pool's runner for its extension; exit 0 passes, anything else fails. */
@Injectable()
export class TestTaskHandler implements TaskHandler<TestTask> {
  constructor(private readonly commands: CommandRunner) {}

  readonly type = 'test';

  async run(task: TestTask, ctx: TaskContext): Promise<HandlerOutput> {
    const { workdir, runners } = ctx.template;
    const file = task.config.test_file;
    const runner = runners.test[extensionOf(file)];
    if (!runner) {
      throw taskFailure({ reason: 'invalid_task', message: `pool ${ctx.pool} has no test runner for "${extensionOf(file)}" files` });
    }
    // Resolved to its real path: a symlink inside the workdir that points outside it is refused.
    const real = realPathWithin(workdir, file);
    if (real === undefined) throw taskFailure({ reason: 'invalid_task', message: `test file ${file} does not exist in ${workdir}` });
    if (real === null) throw taskFailure({ reason: 'invalid_task', message: `test file ${file} resolves to a path outside ${workdir}` });
    const argv = fillArgv(runner, { ...commonPlaceholders(task, ctx), test_file: file });
    const run = await this.commands.run(argv, ctx);
    const output_tail = tail(run.output.text(), OUTPUT_TAIL_CHARS);
    const duration_ms = Math.round(run.durationMs);
    if (run.exitCode === 0) {
      return { outcome: 'passed', duration_ms, exit_code: 0, output_tail, metrics: { execution_time_seconds: run.durationMs / 1000 } };
    }
    throw commandFailure(run, argv[0], 'test_failed', 'test');
  }
}
