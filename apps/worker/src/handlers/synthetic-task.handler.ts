import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import type { SyntheticTask } from '@fleet/contracts';
import { taskFailure } from '@fleet/redis';
import type { HandlerOutput, TaskContext, TaskHandler } from './task-handler.js';

/** Burns CPU for `ms` in short slices, yielding between them so heartbeats and lock renewals keep running. */
async function burnCpu(ms: number, signal: AbortSignal): Promise<void> {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) {
    signal.throwIfAborted();
    const slice = Math.min(end, performance.now() + 10);
    while (performance.now() < slice) x = (x * 1103515245 + 12345) % 2147483648;
    await yieldToLoop();
  }
}

/** Load for demos and tests: waits or burns CPU, fails on request, reports the metrics it was given. */
@Injectable()
export class SyntheticTaskHandler implements TaskHandler<SyntheticTask> {
  readonly type = 'synthetic';

  async run(task: SyntheticTask, ctx: TaskContext): Promise<HandlerOutput> {
    const c = task.config;
    const started = performance.now();
    if (c.duration_ms > 0) {
      if (c.mode === 'cpu') await burnCpu(c.duration_ms, ctx.signal);
      else await sleep(c.duration_ms, undefined, { signal: ctx.signal });
    }
    const duration_ms = Math.round(performance.now() - started);
    if (ctx.attempt <= c.fail_first_attempts) {
      throw taskFailure({
        reason: 'synthetic_failure',
        message: `asked to fail the first ${c.fail_first_attempts} attempt(s); this is attempt ${ctx.attempt}`,
        duration_ms,
      });
    }
    if (c.fail_probability > 0 && Math.random() < c.fail_probability) {
      throw taskFailure({ reason: 'synthetic_failure', message: `failed at random (probability ${c.fail_probability})`, duration_ms });
    }
    return { outcome: 'completed', duration_ms, metrics: { ...c.metrics } };
  }
}
