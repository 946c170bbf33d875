import { existsSync } from 'node:fs';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { ownCgroupDir, startSessionsAhead, WarmServerPool, WORKER_COOKIE_VAR } from '@fleet/exec';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { ProcessGuard } from './process-guard-client.js';

/**
 * The worker's warm pytest servers (see libs/exec/src/warm-python.ts): started on a slot's first pytest file, at
 * most as many idle as the worker has slots (whatever the interpreters), ended after ten idle minutes or with the
 * worker. They carry the worker's cookie, so the guard ends them (and whatever they forked) if the worker dies.
 * A pool whose files all run in its workdir (no `sources`) starts its session servers (`runners.warm: "session"`)
 * at boot, one per slot, so its first files do not wait for pytest's start.
 */
@Injectable()
export class WarmRunners implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WarmRunners.name);
  readonly pool: WarmServerPool;

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly guard: ProcessGuard,
  ) {
    this.pool = new WarmServerPool({
      env: { ...process.env, [WORKER_COOKIE_VAR]: guard.workerCookie },
      maxIdle: settings.concurrency,
      home: ownCgroupDir(),
      onRefused: (what, why) => this.logger.warn(`${what} cannot run pytest files warm (${why}); for the next minute they run without it`),
    });
  }

  onApplicationBootstrap(): void {
    const { template, concurrency, pool, workerId } = this.settings;
    // Files of a pool that may run a commit's checkout run there, not in the workdir: none is started ahead.
    if (template.sources.length > 0 || !existsSync(template.workdir)) return;
    const started = startSessionsAhead(
      this.pool,
      template.runners,
      { pool, worker_id: workerId },
      { cwd: template.workdir, cgroupParent: this.guard.cgroup },
      concurrency,
    );
    if (started > 0) this.logger.log(`starting ${started} session server(s) in ${template.workdir} ahead of the first files`);
  }

  onApplicationShutdown(): void {
    this.pool.close();
  }
}
