import { Inject, Injectable } from '@nestjs/common';
import type { HealthIndicatorService } from '@nestjs/terminus';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { AppMetrics, indicator, type Readiness } from '@fleet/ops';
import { TaskConsumer } from './task-consumer.js';
import { WorkerRedis } from './worker-redis.js';

/** Ready when Redis answers and the worker takes tasks (not draining). */
@Injectable()
export class WorkerReadiness implements Readiness {
  constructor(
    @Inject(WorkerRedis) private readonly redis: WorkerRedis,
    @Inject(TaskConsumer) private readonly consumer: TaskConsumer,
  ) {}

  checks(h: HealthIndicatorService) {
    return [
      () => indicator(h, 'redis', async () => void (await this.redis.connection.ping())),
      () =>
        indicator(h, 'consumer', () => {
          if (!this.consumer.consuming) throw new Error('not taking tasks (starting or draining)');
          return Promise.resolve({ held: this.consumer.current.size });
        }),
    ];
  }
}

/** The worker's gauge of the tasks it holds (its attempt counters are fed by TaskConsumer as they finish). */
@Injectable()
export class WorkerMetrics {
  constructor(
    @Inject(AppMetrics) metrics: AppMetrics,
    @Inject(TaskConsumer) consumer: TaskConsumer,
    @Inject(WORKER_SETTINGS) settings: WorkerSettings,
  ) {
    metrics.gauge('fleet_worker_tasks_held', 'Tasks this worker holds (running, or recording their outcome)', ['pool'], (g) => {
      g.set({ pool: settings.pool }, consumer.current.size);
    });
  }
}
