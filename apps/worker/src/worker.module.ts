import { type DynamicModule, Module } from '@nestjs/common';
import type { WorkerSettings } from '@fleet/config';
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
import { WORKER_SETTINGS } from './worker-settings.js';

@Module({})
export class WorkerModule {
  static forRoot(settings: WorkerSettings): DynamicModule {
    return {
      module: WorkerModule,
      providers: [
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
