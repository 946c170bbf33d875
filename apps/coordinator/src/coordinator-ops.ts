import { Inject, Injectable } from '@nestjs/common';
import type { HealthIndicatorService } from '@nestjs/terminus';
import { AppMetrics, indicator, type Readiness } from '@fleet/ops';
import { TaskQueueRepository } from './task-queue.repository.js';

/** Ready when Redis answers (every route needs it). */
@Injectable()
export class CoordinatorReadiness implements Readiness {
  constructor(@Inject(TaskQueueRepository) private readonly repo: TaskQueueRepository) {}

  checks(h: HealthIndicatorService) {
    return [() => indicator(h, 'redis', () => this.repo.ping())];
  }
}

/**
 * The coordinator's gauges, read from Redis when Prometheus scrapes (not on any request's path): tasks per pool
 * and state, and each pool's backlog as autoscalers see it. A scrape while Redis is away reports none.
 */
@Injectable()
export class CoordinatorMetrics {
  constructor(@Inject(AppMetrics) metrics: AppMetrics, @Inject(TaskQueueRepository) repo: TaskQueueRepository) {
    metrics.gauge(
      'fleet_queue_tasks',
      'Tasks in each pool’s queue, by state (completed and failed as far as retention keeps them)',
      ['pool', 'state'],
      async (g) => {
        g.reset();
        for (const { pool, counts } of await repo.counts().catch(() => []))
          for (const [state, n] of Object.entries(counts)) g.set({ pool, state }, n);
      },
    );
    metrics.gauge(
      'fleet_queue_backlog_tasks',
      'Tasks ready to run in each pool: waiting, prioritized and due delayed (what GET /scaling/:pool serves)',
      ['pool'],
      async (g) => {
        g.reset();
        const pools = await Promise.all(repo.pools.map((p) => repo.scaling(p).catch(() => undefined)));
        for (const s of pools) if (s) g.set({ pool: s.pool }, s.backlog);
      },
    );
  }
}
