import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedis } from '@fleet/redis';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import { RunSignals } from './run-signals.js';
import { RunsRepository } from './runs.repository.js';

/** How long one blocking read waits before it looks at `stopped` again. */
const BLOCK_MS = 5000;

/**
 * Follows the runs' news stream (`FleetKeys.runNews`: a worker adds a run's id with the last attempt of one of
 * its tasks) on a blocking connection of its own, and passes each run on to the reconciler (RunSignals), which
 * releases the run's dependents and finalizes it when its last file has ended: on that file's completion, not
 * on the next RUNS_TICK_MS. Every coordinator reads every entry (no group): reconciling is a compare-and-set.
 * The tick stays as the backstop, for news lost while Redis was away.
 */
@Injectable()
export class RunNews implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RunNews.name);
  private connection: Redis | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;

  constructor(
    @Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings,
    private readonly runs: RunsRepository,
    private readonly signals: RunSignals,
  ) {}

  onApplicationBootstrap(): void {
    const connection = createRedis(this.settings.redisUrl, 'queue', 'coordinator-run-news', this.logger);
    this.connection = connection;
    this.loop = this.follow(connection, this.runs.keys.runNews);
  }

  private async follow(connection: Redis, key: string): Promise<void> {
    let last = '$';
    while (!this.stopped) {
      try {
        const got = await connection.xread('COUNT', 100, 'BLOCK', BLOCK_MS, 'STREAMS', key, last);
        const entries = got?.[0]?.[1] ?? [];
        last = entries.at(-1)?.[0] ?? last;
        const ids = new Set(entries.flatMap(([, fields]) => (fields[0] === 'run' && fields[1] ? [fields[1]] : [])));
        for (const id of ids) if (!this.stopped) this.signals.maybeDone(id);
      } catch {
        // Redis away (the connection logs it) or closing: the tick finalizes meanwhile.
        if (!this.stopped) await sleep(1000);
      }
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.connection?.disconnect();
    await this.loop;
  }
}
