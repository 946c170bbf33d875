import { Inject, Injectable } from '@nestjs/common';
import type { HealthIndicatorService } from '@nestjs/terminus';
import { AppMetrics, indicator, type Readiness } from '@fleet/ops';
import { FleetStateRepository } from './fleet-state.repository.js';
import { PoolsService } from './pools.service.js';
import { ScalingService } from './scaling.service.js';

/**
 * Ready when Redis answers and this manager knows the lease's state (it has finished a tick): it plans the
 * fleet, or follows the plan of the manager holding the lease. Either way the body says which, and who holds it.
 */
@Injectable()
export class ResourceManagerReadiness implements Readiness {
  constructor(
    @Inject(FleetStateRepository) private readonly repo: FleetStateRepository,
    @Inject(ScalingService) private readonly scaling: ScalingService,
  ) {}

  checks(h: HealthIndicatorService) {
    return [
      () => indicator(h, 'redis', () => this.repo.ping()),
      () =>
        indicator(h, 'lease', async () => {
          if (this.scaling.lastTickAt === 0) throw new Error('no scaling tick has finished yet');
          const holder = await this.repo.leaseHolder();
          return { acting: this.scaling.acting, holder, last_tick_at: new Date(this.scaling.lastTickAt).toISOString() };
        }),
    ];
  }
}

/** The manager's gauges, from what it holds in memory (set at scrape time, no Redis read). */
@Injectable()
export class ResourceManagerMetrics {
  constructor(@Inject(AppMetrics) metrics: AppMetrics, @Inject(PoolsService) pools: PoolsService, @Inject(ScalingService) scaling: ScalingService) {
    metrics.gauge(
      'fleet_workers',
      'Workers per pool: running (started or registered), ready, busy (holding a task), draining',
      ['pool', 'state'],
      (g) => {
        g.reset();
        for (const p of pools.list()) for (const state of ['running', 'ready', 'busy', 'draining'] as const) g.set({ pool: p.pool, state }, p[state]);
      },
    );
    metrics.gauge('fleet_pool_desired_workers', 'Workers the last decision wanted per pool (pinned or by policy)', ['pool'], (g) => {
      g.reset();
      for (const p of pools.list()) if (p.desired !== null) g.set({ pool: p.pool }, p.desired);
    });
    metrics.gauge('fleet_pool_pinned', '1 when an operator pinned the pool’s size, 0 when the policy sizes it', ['pool'], (g) => {
      for (const p of pools.list()) g.set({ pool: p.pool }, p.mode === 'pinned' ? 1 : 0);
    });
    metrics.gauge('fleet_pool_crash_loop', '1 while the pool’s workers crash before becoming ready (starting more is held)', ['pool'], (g) => {
      for (const p of pools.list()) g.set({ pool: p.pool }, p.crash_loop ? 1 : 0);
    });
    metrics.gauge('fleet_resource_manager_lease_held', '1 while this manager holds the lease and plans the fleet, 0 on the others', [], (g) => {
      g.set(scaling.acting ? 1 : 0);
    });
  }
}
