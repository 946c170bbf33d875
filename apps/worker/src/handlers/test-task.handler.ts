import { randomBytes } from 'node:crypto';
import { readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { Injectable } from '@nestjs/common';
import { extensionOf, fillArgv, tail, type TestCase, type TestTask } from '@fleet/contracts';
import { CommandRunner } from '../command-runner.js';
import { parseJUnit } from '@fleet/runs';
import { failureOf, taskFailure } from '../task-failure.error.js';
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

/** The cases of a JUnit report the runner wrote; undefined when it wrote none or not XML (the file is then one case). */
function readCases(path: string): TestCase[] | undefined {
  try {
    const cases = parseJUnit(readFileSync(path, 'utf8'));
    return cases.length > 0 ? cases : undefined;
  } catch {
    return undefined;
  }
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
    // A runner that writes JUnit XML gets a fresh path for it; the worker reads the test cases back.
    const junit = runner.some((a) => a.includes('{junit_file}')) ? join(tmpdir(), `fleet-junit-${randomBytes(12).toString('hex')}.xml`) : undefined;
    const argv = fillArgv(runner, { ...commonPlaceholders(task, ctx), test_file: file, junit_file: junit ?? '' });
    try {
      const run = await this.commands.run(argv, ctx);
      const output_tail = tail(run.output.text(), OUTPUT_TAIL_CHARS);
      const duration_ms = Math.round(run.durationMs);
      const cases = junit ? readCases(junit) : undefined;
      if (run.exitCode === 0) {
        return {
          outcome: 'passed',
          duration_ms,
          exit_code: 0,
          output_tail,
          metrics: { execution_time_seconds: run.durationMs / 1000 },
          ...(cases && { cases }),
        };
      }
      const failure = commandFailure(run, argv[0], 'test_failed', 'test');
      if (cases) failureOf(failure).cases = cases;
      throw failure;
    } finally {
      if (junit) rmSync(junit, { force: true });
    }
  }
}
