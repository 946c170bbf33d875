import { type DynamicModule, Module } from '@nestjs/common';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { AppMetrics } from '@fleet/metrics';
import { BenchmarkTaskHandler } from './handlers/benchmark-task.handler.js';
import { SyntheticTaskHandler } from './handlers/synthetic-task.handler.js';
import { TestTaskHandler } from './handlers/test-task.handler.js';
import { CommandRunner } from './command-runner.js';
import { ProgramLauncher } from './program-launcher.js';
import { WarmRunners } from './warm-runners.js';
import { SourceCache } from './source-cache.js';
import { Heartbeat } from './heartbeat.js';
import { LockWatch } from './lock-watch.js';
import { ProcessGuard } from './process-guard-client.js';
import { TaskConsumer } from './task-consumer.js';
import { TaskExecutor } from './task-executor.js';
import { OutcomeWriter } from './outcome-writer.js';
import { WorkerLifecycle } from './worker-lifecycle.js';
import { WorkerRedis } from './worker-redis.js';

/** What a worker with an HTTP surface adds (worker-http.ts builds it; a worker without one never loads it). */
export interface WorkerHttpParts {
  imports: NonNullable<DynamicModule['imports']>;
  controllers: NonNullable<DynamicModule['controllers']>;
  providers: NonNullable<DynamicModule['providers']>;
}

@Module({})
export class WorkerModule {
  /**
   * With `http` (WORKER_PORT set) the worker is an HTTP app too: health, readiness and metrics behind the same
   * guard. Without it, it loads none of that (the worker a resource manager starts: it starts faster).
   */
  static forRoot(settings: WorkerSettings, http?: WorkerHttpParts): DynamicModule {
    return {
      module: WorkerModule,
      imports: http?.imports ?? [],
      controllers: http?.controllers ?? [],
      providers: [
        ...(http?.providers ?? [AppMetrics]),
        { provide: WORKER_SETTINGS, useValue: settings },
        WorkerRedis,
        ProcessGuard,
        LockWatch,
        WarmRunners,
        CommandRunner,
        ProgramLauncher,
        SourceCache,
        TestTaskHandler,
        BenchmarkTaskHandler,
        SyntheticTaskHandler,
        TaskExecutor,
        OutcomeWriter,
        TaskConsumer,
        Heartbeat,
        WorkerLifecycle,
      ],
    };
  }
}
