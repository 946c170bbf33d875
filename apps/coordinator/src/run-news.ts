import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { StreamFollower } from '@fleet/redis';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import { RunSignals } from './run-signals.js';
import { RunsRepository } from './runs.repository.js';

/**
 * Follows the runs' news stream (`FleetKeys.runNews`: a worker adds a run's id with the last attempt of one of
 * its tasks, when that can change anything: see attempt-record.ts) and passes each run on to the reconciler
 * (RunSignals), which releases the run's dependents and finalizes it when its last file has ended: on that
 * file's completion, not on the next RUNS_TICK_MS. Every coordinator reads every entry (no group): reconciling is
 * a compare-and-set. The tick stays as the backstop, for news lost while Redis was away.
 */
@Injectable()
export class RunNews implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly follower: StreamFollower;

  constructor(
    @Inject(COORDINATOR_SETTINGS) settings: CoordinatorSettings,
    private readonly runs: RunsRepository,
    private readonly signals: RunSignals,
  ) {
    this.follower = new StreamFollower(settings.redisUrl, new Logger(RunNews.name));
  }

  onApplicationBootstrap(): void {
    this.follower.follow(
      this.runs.keys.runNews,
      'coordinator-run-news',
      (entries) => {
        // Each run once per batch, with the highest count of last attempts its entries carry.
        const runs = new Map<string, number | undefined>();
        for (const [, fields] of entries) {
          if (fields[0] !== 'run' || !fields[1]) continue;
          const finals = fields[2] === 'finals' ? Number(fields[3]) : undefined;
          const seen = runs.has(fields[1]) ? runs.get(fields[1]) : 0;
          runs.set(fields[1], finals === undefined || seen === undefined ? undefined : Math.max(seen, finals));
        }
        for (const [id, finals] of runs) this.signals.maybeDone(id, finals);
      },
      { count: 100 },
    );
  }

  onApplicationShutdown(): Promise<void> {
    return this.follower.stop();
  }
}
