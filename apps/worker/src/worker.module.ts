import { type DynamicModule, Module } from '@nestjs/common';
import { AuthModule } from '@fleet/auth';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { AppMetrics, opsModuleParts } from '@fleet/ops';
import { WorkerMetrics, WorkerReadiness } from './worker-ops.js';
import { BenchmarkTaskHandler } from './handlers/benchmark-task.handler.js';
import { SyntheticTaskHandler } from './handlers/synthetic-task.handler.js';
import { TestTaskHandler } from './handlers/test-task.handler.js';
import { CommandRunner } from './command-runner.js';
import { Heartbeat } from './heartbeat.js';
import { LockWatch } from './lock-watch.js';
import { ProcessGuard } from './process-guard-client.js';
import { TaskConsumer } from './task-consumer.js';
import { TaskExecutor } from './task-executor.js';
import { OutcomeWriter } from './outcome-writer.js';
import { WorkerLifecycle } from './worker-lifecycle.js';
import { WorkerRedis } from './worker-redis.js';

@Module({})
export class WorkerModule {
  /** With `WORKER_PORT` set the worker is an HTTP app too: health, readiness and metrics behind the same guard. */
  static forRoot(settings: WorkerSettings): DynamicModule {
    const http = settings.security !== undefined && settings.httpPort !== undefined;
    const ops = opsModuleParts(WorkerReadiness);
    return {
      module: WorkerModule,
      imports: http
        ? [
            AuthModule.forRoot({
              security: settings.security as NonNullable<WorkerSettings['security']>,
              redisUrl: settings.redisUrl,
              prefix: settings.prefix,
              app: 'worker',
            }),
            ...ops.imports,
          ]
        : [],
      controllers: http ? ops.controllers : [],
      providers: [
        ...(http ? [...ops.providers, WorkerMetrics] : [AppMetrics]),
        { provide: WORKER_SETTINGS, useValue: settings },
        WorkerRedis,
        ProcessGuard,
        LockWatch,
        CommandRunner,
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
