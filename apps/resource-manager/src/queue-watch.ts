import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { StreamFollower } from '@fleet/redis';
import { type ResourceManagerSettings, RM_SETTINGS } from './rm-settings.js';
import { FleetStateRepository } from './fleet-state.repository.js';
import { ScalingService } from './scaling.service.js';

/** Nudged ticks come at most this often (a steady stream of arrivals must not turn the tick into a busy loop). */
export const NUDGE_MIN_INTERVAL_MS = 200;

/**
 * Reacts to work arriving instead of waiting for the next `polling_interval`. Per managed pool, it waits on the
 * pool's BullMQ events stream for the next entry (whatever changed: a task waiting, running or ending), skips to
 * the newest, asks the scaling service for a tick when the pool could use one, and reads again no sooner than
 * NUDGE_MIN_INTERVAL_MS later. So the manager's cost is one small read per nudge, not per event, however busy
 * the pool is (BullMQ's QueueEvents would parse every event, results included). The interval tick stays: it
 * scales down, and it scales up when the events stream cannot be read.
 */
@Injectable()
export class QueueWatch {
  private readonly follower: StreamFollower;

  constructor(
    @Inject(RM_SETTINGS) private readonly settings: ResourceManagerSettings,
    private readonly repo: FleetStateRepository,
    private readonly scaling: ScalingService,
  ) {
    this.follower = new StreamFollower(settings.redisUrl, new Logger(QueueWatch.name));
  }

  start(): void {
    for (const { pool } of this.settings.config.pools.filter((p) => p.managed)) {
      const name = `resource-manager:${this.settings.managerId}:events:${pool}`;
      this.follower.follow(this.repo.eventsKey(pool), name, () => this.nudge(pool), { count: 1, newestOnly: true });
    }
  }

  private async nudge(pool: string): Promise<void> {
    if (!this.scaling.wantsNudge(pool)) return;
    void this.scaling.tick();
    await sleep(NUDGE_MIN_INTERVAL_MS);
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }
}
