import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ownCgroupDir, WarmPytestPool, WORKER_COOKIE_VAR } from '@fleet/exec';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { ProcessGuard } from './process-guard-client.js';

/**
 * The worker's warm pytest servers (see libs/exec/src/warm-python.ts): started on a slot's first pytest file, at
 * most as many idle as the worker has slots (whatever the interpreters), ended after ten idle minutes or with the
 * worker. They carry the worker's cookie, so the guard ends them (and whatever they forked) if the worker dies.
 */
@Injectable()
export class WarmRunners implements OnApplicationShutdown {
  private readonly logger = new Logger(WarmRunners.name);
  readonly pool: WarmPytestPool;

  constructor(@Inject(WORKER_SETTINGS) settings: WorkerSettings, guard: ProcessGuard) {
    this.pool = new WarmPytestPool({
      env: { ...process.env, [WORKER_COOKIE_VAR]: guard.workerCookie },
      maxIdle: settings.concurrency,
      home: ownCgroupDir(),
      onRefused: (what, why) => this.logger.warn(`${what} cannot run pytest files warm (${why}); for the next minute they run without it`),
    });
  }

  onApplicationShutdown(): void {
    this.pool.close();
  }
}
