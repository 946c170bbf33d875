import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { bootId, keepPlacement, keptPlacement, Launcher, ownCgroupDir, type PlacementProbe, WORKER_COOKIE_VAR } from '@fleet/exec';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { ProcessGuard } from './process-guard-client.js';

/** After a launcher could not start or died, commands are spawned by the worker itself for this long. */
const RETRY_AFTER_MS = 60_000;

/**
 * The worker's launcher (libs/exec/src/launcher.ts): started on the first command, carrying the worker's cookie
 * (the guard ends it with the worker), ended with the worker. Without a Python, with `WORKER_LAUNCHER=off`, or
 * with a cgroup this process cannot find its own group in (the launcher must return to it after each start),
 * commands are spawned by the worker as before.
 */
@Injectable()
export class ProgramLauncher implements OnApplicationShutdown {
  private readonly logger = new Logger(ProgramLauncher.name);
  private current: Launcher | undefined;
  private starting: Promise<Launcher | undefined> | undefined;
  private retryAt = 0;
  private closed = false;
  private told = false;
  private readonly home: string | undefined;
  private readonly python: string | undefined;

  constructor(
    @Inject(WORKER_SETTINGS) settings: WorkerSettings,
    private readonly guard: ProcessGuard,
  ) {
    this.home = ownCgroupDir();
    this.python = settings.launcher === 'off' ? undefined : Launcher.python();
    if (settings.launcher !== 'off' && !this.python) this.logger.warn('no python3 found: the worker spawns commands itself (slower per file)');
  }

  /** The launcher to start a command with, or undefined: spawn it. */
  async get(): Promise<Launcher | undefined> {
    if (this.closed || !this.python || (this.guard.cgroup && !this.home)) return undefined;
    if (this.current?.alive) return this.current;
    if (this.current) {
      this.logger.warn('the launcher ended; the worker spawns commands itself for a minute');
      this.current = undefined;
      this.retryAt = Date.now() + RETRY_AFTER_MS;
    }
    if (Date.now() < this.retryAt) return undefined;
    this.starting ??= this.start(this.python).finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(python: string): Promise<Launcher | undefined> {
    try {
      // How programs get into their cgroups: as told (FLEET_LAUNCHER_CLONE3=on or off), as timed earlier in this
      // boot, or timed now in the worker's cgroup, with /bin/true and a Node start (the program a move was seen to slow).
      const forced = ['on', 'off'].includes(process.env.FLEET_LAUNCHER_CLONE3 ?? '');
      const boot = this.guard.cgroup && !forced ? bootId() : undefined;
      const kept = boot ? keptPlacement(boot) : undefined;
      const env = {
        ...process.env,
        [WORKER_COOKIE_VAR]: this.guard.workerCookie,
        ...(kept && { FLEET_LAUNCHER_CLONE3: kept.placement === 'clone3' ? 'on' : 'off' }),
      };
      const probe: PlacementProbe | undefined =
        this.guard.cgroup && !forced && !kept ? { in: this.guard.cgroup, argv: [process.execPath, '-e', '0'] } : undefined;
      this.current = await Launcher.start(python, this.home ?? '', env, probe);
      if (this.closed) this.current.close();
      const timed = this.current.probe;
      if (boot && timed) keepPlacement({ boot, placement: this.current.placement, probe: timed });
      const t = timed ?? kept?.probe;
      if (t && !this.told) {
        // Once per worker: which way its programs get into their cgroups, and why.
        this.told = true;
        const ms = (n: number) => `${n.toFixed(2)} ms`;
        const when = timed ? 'timed now' : 'timed by the first launcher of this boot';
        this.logger.log(
          `programs start in their cgroups by ${this.current.placement} (${when}, the fastest /bin/true and Node start added up: clone3 ${ms(t.clone3)}, move ${ms(t.move)})`,
        );
      }
      return this.current;
    } catch (err) {
      this.retryAt = Date.now() + RETRY_AFTER_MS;
      this.logger.warn(`the launcher could not start (${(err as Error).message}); the worker spawns commands itself for a minute`);
      return undefined;
    }
  }

  onApplicationShutdown(): void {
    this.closed = true;
    this.current?.close();
  }
}
