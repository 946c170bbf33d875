import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { StreamFollower } from '@fleet/redis';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import { RunSignals } from './run-signals.js';
import { RunsRepository } from './runs.repository.js';

/**
 * Follows the runs' news stream (`FleetKeys.runNews`: a worker adds a run's id with the last attempt of one of
 * its tasks) and passes each run on to the reconciler (RunSignals), which releases the run's dependents and
 * finalizes it when its last file has ended: on that file's completion, not on the next RUNS_TICK_MS. Every
 * coordinator reads every entry (no group): reconciling is a compare-and-set. The tick stays as the backstop,
 * for news lost while Redis was away.
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
        const ids = new Set(entries.flatMap(([, fields]) => (fields[0] === 'run' && fields[1] ? [fields[1]] : [])));
        for (const id of ids) this.signals.maybeDone(id);
      },
      { count: 100 },
    );
  }

  onApplicationShutdown(): Promise<void> {
    return this.follower.stop();
  }
}
