import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { Injectable } from '@nestjs/common';
import { extensionOf, fillArgv, tail, type TestTask } from '@fleet/contracts';
import { CommandRunner } from '../command-runner.js';
import { taskFailure } from '../task-failure.error.js';
import { commandFailure, commonPlaceholders, type HandlerOutput, OUTPUT_TAIL_CHARS, type TaskContext, type TaskHandler } from './task-handler.js';

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
    const path = resolve(workdir, file);
    if (relative(workdir, path).startsWith('..') || !existsSync(path)) {
      throw taskFailure({ reason: 'invalid_task', message: `test file ${file} does not exist in ${workdir}` });
    }
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
