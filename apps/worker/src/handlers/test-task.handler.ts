import { Injectable } from '@nestjs/common';
import { hostname } from 'node:os';
import { exitMeaning, extensionOf, runsWarm, fillArgv, FULL_SHA, noTestCases, repoUrlProblem, tail, type TestTask } from '@fleet/contracts';
import { makeReportDir, readJUnitReport, realPathWithin, removeReportDir } from '@fleet/exec';
import { allowListProblem, GitSourceError } from '@fleet/sources';
import { CommandRunner } from '../command-runner.js';
import { type SetupRecord, SourceCache } from '../source-cache.js';
import { parseJUnitOffLoop } from './junit-thread.js';
import { failureOf, taskFailure } from '@fleet/redis';
import {
  commandFailure,
  commonPlaceholders,
  type HandlerOutput,
  OUTPUT_TAIL_CHARS,
  type Prepared,
  type TaskContext,
  type TaskHandler,
} from './task-handler.js';

/**
 * Runs `config.test_file` with the pool's runner for its extension; exit 0 passes, anything else fails. A task
 * with a `source` runs in that commit's checkout from the host's cache, after the pool's setup for the commit.
 */
@Injectable()
export class TestTaskHandler implements TaskHandler<TestTask> {
  constructor(
    private readonly commands: CommandRunner,
    private readonly sources: SourceCache,
  ) {}

  readonly type = 'test';

  async prepare(task: TestTask, ctx: TaskContext): Promise<Prepared | undefined> {
    const source = task.config.source;
    if (!source) return undefined;
    const invalid = (message: string) => taskFailure({ reason: 'invalid_task', message });
    // The coordinator checked these; a payload written to Redis by anything else is checked again here.
    if (!FULL_SHA.test(source.commit)) throw invalid(`source.commit must be a full commit sha on the queue, not "${source.commit}"`);
    const problem = repoUrlProblem(source.repo) ?? allowListProblem(source.repo, ctx.pool, ctx.template.sources);
    if (problem) throw invalid(`source.repo: ${problem}`);
    let lease;
    try {
      lease = await this.sources.acquire(source, ctx.signal, ctx.template.setup);
    } catch (err) {
      const message =
        err instanceof GitSourceError
          ? err.message
          : `commit ${source.commit} of ${source.repo} could not be prepared on ${hostname()}: ${(err as Error).message}`;
      throw taskFailure({ reason: 'source_failed', message });
    }
    const env = { FLEET_REPO: source.repo, FLEET_COMMIT: source.commit };
    const setup = ctx.template.setup;
    if (setup) {
      let record: SetupRecord;
      try {
        record = await this.sources.setup(lease, ctx.template.setup_timeout_ms, ctx.signal, () => this.runSetup(task, setup, ctx, lease.dir, env));
      } catch (err) {
        await lease.release();
        throw err;
      }
      if (!record.ok) {
        await lease.release();
        throw taskFailure({
          reason: 'setup_failed',
          message: `the setup (${record.argv.join(' ')}) for commit ${source.commit} of ${source.repo} failed on ${record.host}: ${record.reason}`,
          exit_code: record.exit_code,
          output_tail: record.output_tail,
          duration_ms: 0,
        });
      }
    }
    return { cwd: lease.dir, env, release: () => lease.release() };
  }

  /** Runs the pool's setup in the checkout, under its own timeout; undefined when the attempt's lock was lost. */
  private async runSetup(
    task: TestTask,
    argv: readonly string[],
    ctx: TaskContext,
    cwd: string,
    env: Record<string, string>,
  ): Promise<SetupRecord | undefined> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), ctx.template.setup_timeout_ms);
    const signal = AbortSignal.any([ctx.signal, timeout.signal]);
    const filled = fillArgv(argv, { ...commonPlaceholders(task, ctx), timeout_ms: String(ctx.template.setup_timeout_ms) });
    try {
      const run = await this.commands.run(filled, { ...ctx, signal }, { cwd, env });
      if (ctx.signal.aborted) return undefined;
      const timedOut = timeout.signal.aborted;
      return {
        ok: run.started && run.exitCode === 0 && !timedOut,
        argv: filled,
        exit_code: run.exitCode,
        reason: !run.started
          ? `${filled[0]} could not be started`
          : timedOut
            ? `took longer than setup_timeout_ms ${ctx.template.setup_timeout_ms} and was stopped`
            : `exited with code ${run.exitCode}`,
        output_tail: tail(run.output.text(), OUTPUT_TAIL_CHARS),
        duration_ms: Math.round(run.durationMs),
        host: hostname(),
        at: Date.now(),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  async run(task: TestTask, ctx: TaskContext, prepared?: Prepared): Promise<HandlerOutput> {
    const { runners } = ctx.template;
    const workdir = prepared?.cwd ?? ctx.template.workdir;
    const file = task.config.test_file;
    const ext = extensionOf(file);
    const runner = runners.test[ext];
    if (!runner) {
      throw taskFailure({ reason: 'invalid_task', message: `pool ${ctx.pool} has no test runner for "${ext}" files` });
    }
    // Resolved to its real path: a symlink inside the workdir that points outside it is refused.
    const real = realPathWithin(workdir, file);
    const source = task.config.source;
    const where = source ? `commit ${source.commit} of ${source.repo}` : workdir;
    if (real === undefined) throw taskFailure({ reason: 'invalid_task', message: `test file ${file} does not exist in ${where}` });
    if (real === null) throw taskFailure({ reason: 'invalid_task', message: `test file ${file} resolves to a path outside ${where}` });
    // A runner that writes JUnit XML gets a path in a private folder of this attempt's own (makeReportDir); the
    // worker reads the test cases back.
    const reportDir = runner.some((a) => a.includes('{junit_file}')) ? makeReportDir() : undefined;
    const junit = reportDir?.report;
    const argv = fillArgv(runner, { ...commonPlaceholders(task, ctx), test_file: file, junit_file: junit ?? '' });
    try {
      const run = await this.commands.run(argv, ctx, prepared && { cwd: prepared.cwd, env: prepared.env }, runsWarm(runners, ext), {
        file,
        ...(junit && { junit }),
      });
      const report = junit ? await readJUnitReport(junit, parseJUnitOffLoop) : {};
      const cases = report.cases;
      const output_tail = tail(run.output.text() + (report.note ? `\n[fleet] ${report.note}\n` : ''), OUTPUT_TAIL_CHARS);
      const duration_ms = Math.round(run.durationMs);
      // A run stopped (timeout, lost lock) failed whatever its code.
      const meaning = run.started && !run.aborted ? exitMeaning(runners, ext, run.exitCode) : 'failed';
      if (meaning !== 'failed') {
        // A file that ran no test (pytest's 5, say) is one skipped case unless its report says so itself.
        const reported = meaning === 'skipped' ? noTestCases(file, run.durationMs, run.exitCode, cases) : cases;
        return {
          outcome: 'passed',
          duration_ms,
          exit_code: run.exitCode,
          output_tail,
          metrics: { execution_time_seconds: run.durationMs / 1000 },
          ...(reported && { cases: reported }),
        };
      }
      const failure = commandFailure(run, argv[0], 'test_failed', 'test');
      if (cases) failureOf(failure).cases = cases;
      if (report.note) failureOf(failure).output_tail = output_tail;
      throw failure;
    } finally {
      if (reportDir) await removeReportDir(reportDir);
    }
  }
}
