import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedis } from '@fleet/redis';
import { type ResourceManagerSettings, RM_SETTINGS } from './rm-settings.js';
import { FleetStateRepository } from './fleet-state.repository.js';
import { ScalingService } from './scaling.service.js';

/** Nudged ticks come at most this often (a steady stream of arrivals must not turn the tick into a busy loop). */
export const NUDGE_MIN_INTERVAL_MS = 200;
/** How long one blocking read waits before it looks at `stopped` again. */
const BLOCK_MS = 5000;

/**
 * Reacts to work arriving instead of waiting for the next `polling_interval`. Per managed pool, one blocking
 * connection waits on the pool's BullMQ events stream for the next entry (`XREAD COUNT 1 BLOCK`: whatever
 * changed, a task waiting or running or ending), skips to the newest, asks the scaling service for a tick when
 * the pool could use one, and reads again no sooner than NUDGE_MIN_INTERVAL_MS later. So the manager's cost is
 * one small read per nudge, not per event, however busy the pool is (BullMQ's QueueEvents would parse every
 * event, results included). The interval tick stays: it scales down, and it scales up when the events stream
 * cannot be read.
 */
@Injectable()
export class QueueWatch {
  private readonly logger = new Logger(QueueWatch.name);
  private readonly connections: Redis[] = [];
  private readonly loops: Array<Promise<void>> = [];
  private stopped = false;

  constructor(
    @Inject(RM_SETTINGS) private readonly settings: ResourceManagerSettings,
    private readonly repo: FleetStateRepository,
    private readonly scaling: ScalingService,
  ) {}

  start(): void {
    for (const pool of this.settings.config.pools.filter((p) => p.managed)) {
      const connection = createRedis(this.settings.redisUrl, 'queue', `resource-manager:${this.settings.managerId}:events:${pool.pool}`, this.logger);
      this.connections.push(connection);
      this.loops.push(this.follow(pool.pool, this.repo.eventsKey(pool.pool), connection));
    }
  }

  private async follow(pool: string, key: string, connection: Redis): Promise<void> {
    let last = '$';
    while (!this.stopped) {
      try {
        const got = await connection.xread('COUNT', 1, 'BLOCK', BLOCK_MS, 'STREAMS', key, last);
        if (!got || this.stopped) continue;
        // On from the newest entry: one nudge covers everything that came since the last. What comes during the
        // pause below is after `last`, so the next read returns at once.
        const [newest] = await connection.xrevrange(key, '+', '-', 'COUNT', 1);
        last = newest?.[0] ?? got[0]?.[1][0]?.[0] ?? last;
        if (!this.scaling.wantsNudge(pool)) continue;
        void this.scaling.tick();
        await sleep(NUDGE_MIN_INTERVAL_MS);
      } catch {
        // Redis away (the connection logs it) or closing: the interval tick carries on meanwhile.
        if (!this.stopped) await sleep(1000);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const c of this.connections) c.disconnect();
    await Promise.allSettled(this.loops);
  }
}
