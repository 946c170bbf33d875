import { Injectable } from '@nestjs/common';
import { type BenchmarkTask, FAILURE_LIMITS, fillArgv, METRIC_NAME, tail } from '@fleet/contracts';
import { CommandRunner } from '../command-runner.js';
import { taskFailure } from '@fleet/redis';
import { commandFailure, commonPlaceholders, type HandlerOutput, OUTPUT_TAIL_CHARS, type TaskContext, type TaskHandler } from './task-handler.js';

/** The metrics a benchmark printed: the last stdout line that is a JSON object; its finite numbers. */
export function parseBenchmarkMetrics(stdout: string): Record<string, number> | undefined {
  const lines = stdout.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i].trim();
    if (!line.startsWith('{')) continue;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
      const metrics: Record<string, number> = {};
      for (const [k, v] of Object.entries(parsed)) {
        // At most 32 metrics are kept, as a task's own metrics: a benchmark cannot make Redis hold more.
        if (
          Object.keys(metrics).length < FAILURE_LIMITS.metrics &&
          METRIC_NAME.test(k) &&
          k.length <= 64 &&
          typeof v === 'number' &&
          Number.isFinite(v)
        )
          metrics[k] = v;
      }
      return metrics;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Runs the pool's benchmark command with the task's model, batch sizes, precision and iterations. */
@Injectable()
export class BenchmarkTaskHandler implements TaskHandler<BenchmarkTask> {
  constructor(private readonly commands: CommandRunner) {}

  readonly type = 'benchmark';

  async run(task: BenchmarkTask, ctx: TaskContext): Promise<HandlerOutput> {
    const runner = ctx.template.runners.benchmark;
    if (!runner) throw taskFailure({ reason: 'invalid_task', message: `pool ${ctx.pool} has no benchmark runner` });
    const c = task.config;
    const argv = fillArgv(runner, {
      ...commonPlaceholders(task, ctx),
      model: c.model,
      batch_sizes: c.batch_sizes.join(','),
      precision: c.precision,
      iterations: String(c.iterations),
    });
    const run = await this.commands.run(argv, ctx);
    if (run.exitCode !== 0) throw commandFailure(run, argv[0], 'benchmark_failed', 'benchmark');
    const output_tail = tail(run.output.text(), OUTPUT_TAIL_CHARS);
    const duration_ms = Math.round(run.durationMs);
    const metrics = parseBenchmarkMetrics(run.stdout.text());
    if (!metrics) {
      throw taskFailure({
        reason: 'bad_output',
        message: 'benchmark printed no JSON object of metrics on its last line',
        exit_code: 0,
        output_tail,
        duration_ms,
      });
    }
    metrics.execution_time_seconds ??= run.durationMs / 1000;
    return { outcome: 'completed', duration_ms, exit_code: 0, output_tail, metrics };
  }
}
