import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { EXIT_CONFIG_ERROR, STANDBY_GO_LINE } from '@fleet/app';
import { type ResourceManagerSettings, RM_SETTINGS } from './rm-settings.js';

/** How long a worker's exit waits for the end of its output. */
const OUTPUT_DRAIN_MS = 500;

/** Resolves when the child's stdout and stderr have ended, or after `ms`. */
function outputEnded(child: ChildProcess, ms: number): Promise<void> {
  const open = [child.stdout, child.stderr].filter((s) => s !== null && !s.readableEnded && !s.destroyed);
  if (open.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void Promise.all(open.map((s) => new Promise((r) => s?.once('end', r).once('close', r)))).then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A spare is loaded but not yet a worker (see `keepSpares`); activated, it starts like any other. */
export type WorkerState = 'starting' | 'ready' | 'draining';
export type ChildState = 'spare' | WorkerState;

export interface ManagedWorker {
  id: string;
  pool: string;
  pid: number;
  state: ChildState;
  startedAt: number;
  readyAt?: number;
  process: ChildProcess;
  exited: Promise<void>;
  /** Last lines it printed, for crash reports. */
  tail: string[];
  /** Attempts it finished, as its last heartbeat said: a worker that did work and then died is not a crash loop. */
  finished: number;
  /** When the registry last listed it (its heartbeat was fresh). */
  lastSeen?: number;
}

export interface CrashLoop {
  since: number;
  reason: string;
  lastOutput: string[];
}

interface PoolHealth {
  crashes: Array<{ at: number; beforeReady: boolean }>;
  consecutiveStartupCrashes: number;
  respawnNotBefore: number;
  crashLoop?: CrashLoop;
}

const CRASH_WINDOW_MS = 60_000;
const CRASHES_PER_WINDOW = 5;
const STARTUP_CRASHES_IN_A_ROW = 3;
const TAIL_LINES = 20;

/**
 * Runs this manager's worker processes: starts them, tracks each (starting → ready once its heartbeat
 * appears → draining → gone), stops them with SIGTERM and then SIGKILL after the pool's grace period,
 * and tells crashes (exits nobody asked for) apart. Crashed workers are replaced by the next tick after a
 * backoff that doubles with each recent crash; a pool whose workers keep crashing (or exit with a
 * configuration error) is in a crash loop, and no more are started for it until an operator acts.
 */
@Injectable()
export class WorkerSupervisor {
  private readonly logger = new Logger(WorkerSupervisor.name);
  private readonly workers = new Map<string, ManagedWorker>();
  /** Warm spares by id: processes with the worker's code loaded, waiting for `go` (apps/worker/src/standby.ts). */
  private readonly spares = new Map<string, ManagedWorker>();
  private readonly health = new Map<string, PoolHealth>();
  /** Per pool, how long a worker takes from spawn to its first heartbeat (ms, a moving average). */
  private readonly startups = new Map<string, number>();
  private seq = 0;

  /** How long this pool's workers have taken to become ready, as measured here (undefined before the first). */
  startupMs(pool: string): number | undefined {
    return this.startups.get(pool);
  }

  constructor(@Inject(RM_SETTINGS) private readonly settings: ResourceManagerSettings) {}

  private healthOf(pool: string): PoolHealth {
    let h = this.health.get(pool);
    if (!h) {
      h = { crashes: [], consecutiveStartupCrashes: 0, respawnNotBefore: 0 };
      this.health.set(pool, h);
    }
    return h;
  }

  /** Workers (not spares) of the pool, or all. */
  list(pool?: string): Array<ManagedWorker & { state: WorkerState }> {
    return [...this.workers.values()].filter(
      (w): w is ManagedWorker & { state: WorkerState } => w.state !== 'spare' && (pool === undefined || w.pool === pool),
    );
  }

  has(id: string): boolean {
    return this.workers.has(id);
  }

  crashLoop(pool: string): CrashLoop | undefined {
    return this.health.get(pool)?.crashLoop;
  }

  /** Why no worker may be started for the pool now, or undefined when one may. */
  blocked(pool: string, now = Date.now()): string | undefined {
    const h = this.healthOf(pool);
    if (h.crashLoop) return `crash loop: ${h.crashLoop.reason}`;
    if (now < h.respawnNotBefore) return `restart backoff after a crash (${Math.ceil((h.respawnNotBefore - now) / 1000)}s left)`;
    return undefined;
  }

  /** An operator acted on the pool: forget its crashes and try again. */
  resetCrashes(pool: string): void {
    this.health.delete(pool);
  }

  /** Marks started workers whose heartbeat has appeared as ready, and notes how much work each has done. */
  markReady(registered: ReadonlyArray<{ id: string; completed: number; failed: number }>, now = Date.now()): void {
    for (const r of registered) {
      const w = this.workers.get(r.id);
      if (!w) continue;
      w.lastSeen = now;
      w.finished = r.completed + r.failed;
      if (w.state === 'starting') {
        w.state = 'ready';
        w.readyAt = Date.now();
        const took = w.readyAt - w.startedAt;
        const before = this.startups.get(w.pool);
        this.startups.set(w.pool, before === undefined ? took : 0.7 * before + 0.3 * took);
        this.healthOf(w.pool).consecutiveStartupCrashes = 0;
      }
    }
  }

  /**
   * Kills the ready workers whose process lives but whose heartbeat has been gone for `silentWorkerMs` (a
   * stopped or hung process: its tasks go elsewhere when their locks expire, but its slot would stay taken for
   * ever). Its exit counts as a crash, and the next ticks replace it. Call after `markReady` with the same list.
   */
  reapSilent(now = Date.now()): ManagedWorker[] {
    const silent = [...this.workers.values()].filter(
      (w) => w.state === 'ready' && now - (w.lastSeen ?? w.readyAt ?? now) >= this.settings.silentWorkerMs,
    );
    for (const w of silent) {
      this.logger.warn(
        `worker ${w.id} (pid ${w.pid}) has sent no heartbeat for ${Math.round((now - (w.lastSeen ?? now)) / 1000)} s while its process lives (stopped or hung): SIGKILL; it will be replaced`,
      );
      w.process.kill('SIGKILL');
    }
    return silent;
  }

  /**
   * Starts a worker of the pool: a warm spare of the pool when there is one (it only has to connect, about a
   * sixth of a cold start's CPU), else a new process.
   */
  start(pool: string, workerEnv: Record<string, string>): ManagedWorker {
    const spare = [...this.spares.values()].find((w) => w.pool === pool && w.state === 'spare');
    if (spare && spare.process.stdin?.writable) {
      this.spares.delete(spare.id);
      spare.state = 'starting';
      spare.startedAt = Date.now();
      spare.process.stdin.write(`${STANDBY_GO_LINE}\n`);
      this.workers.set(spare.id, spare);
      this.logger.log(`started worker ${spare.id} (pid ${spare.pid}) for pool ${pool} from a warm spare`);
      return spare;
    }
    const w = this.spawnChild(pool, workerEnv, false);
    this.workers.set(w.id, w);
    this.logger.log(`started worker ${w.id} (pid ${w.pid}) for pool ${pool}`);
    return w;
  }

  /**
   * Keeps `n` warm spares of the pool: processes that have loaded the worker's code and wait, holding no
   * connection and taking no work, until `start` makes one a worker. They cost memory (about 110 MB each), no
   * CPU while they wait, and are not workers: they count toward no limit. New ones are started one per call,
   * so refilling never competes with a burst's cold starts; extra ones are ended. Only for workers bound to
   * this manager (`deprovision_on_stop`): a spare needs its stdin.
   */
  keepSpares(pool: string, workerEnv: Record<string, string>, n: number): void {
    const mine = [...this.spares.values()].filter((w) => w.pool === pool && w.state === 'spare');
    const want = this.settings.config.deprovisionOnStop ? n : 0;
    for (const extra of mine.slice(want)) this.retireSpare(extra);
    if (mine.length < want && !this.blocked(pool)) {
      const w = this.spawnChild(pool, workerEnv, true);
      this.spares.set(w.id, w);
    }
  }

  /** Warm spares of the pool (or all), waiting. */
  listSpares(pool?: string): ManagedWorker[] {
    return [...this.spares.values()].filter((w) => pool === undefined || w.pool === pool);
  }

  /** SIGKILL: a spare has nothing to drain (no connection, task or guard), and one still loading may miss a SIGTERM. */
  private retireSpare(w: ManagedWorker): void {
    w.state = 'draining';
    w.process.kill('SIGKILL');
  }

  private spawnChild(pool: string, workerEnv: Record<string, string>, standby: boolean): ManagedWorker {
    const id = `${this.settings.managerId}-${pool}-${++this.seq}`;
    // With deprovision_on_stop (the default) a worker drains and exits when this manager goes away, even
    // if it is killed (its stdin closes). Without it, workers outlive the manager. Either way a worker has a
    // process group of its own: a terminal's Ctrl-C reaches the manager, which drains its workers in order.
    const bound = this.settings.config.deprovisionOnStop;
    const child = spawn(process.execPath, [this.settings.workerEntry, '--pool', pool, '--id', id], {
      // JSON logs (this manager reads them); no HTTP port of their own (WORKER_PORT is for a worker run alone).
      env: {
        ...this.settings.workerEnv,
        NO_COLOR: '1',
        LOG_FORMAT: 'json',
        WORKER_PORT: '',
        WORKER_EXIT_WITH_PARENT: bound ? '1' : '0',
        WORKER_STANDBY: standby ? '1' : '',
        ...workerEnv,
      },
      stdio: bound ? ['pipe', 'pipe', 'pipe'] : 'ignore',
      detached: true,
    });
    if (!bound) child.unref();
    child.stdin?.on('error', () => undefined);
    const w: ManagedWorker = {
      id,
      pool,
      pid: child.pid ?? -1,
      state: standby ? 'spare' : 'starting',
      startedAt: Date.now(),
      process: child,
      tail: [],
      finished: 0,
      // 'exit' can come before the last lines of the worker's output are read (its tail is what a crash loop
      // reports): the streams' end is awaited first, at most OUTPUT_DRAIN_MS (a grandchild may hold them open).
      exited: new Promise((resolve) =>
        child.on('exit', (code, signal) => void outputEnded(child, OUTPUT_DRAIN_MS).then(() => resolve(this.onExit(w, code, signal)))),
      ),
    };
    child.on('error', (err) => w.tail.push(`cannot start: ${err.message}`));
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        w.tail.push(line);
        if (w.tail.length > TAIL_LINES) w.tail.shift();
        relayWorkerLine(this.logger, id, line);
      });
    }
    return w;
  }

  private onExit(w: ManagedWorker, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(w.id);
    this.spares.delete(w.id);
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (w.state === 'draining') {
      this.logger.log(`worker ${w.id} stopped (${how})`);
      return;
    }
    const h = this.healthOf(w.pool);
    const now = Date.now();
    // A spare that dies unasked is a start-up crash like any other (a broken build crashes both).
    const beforeReady = w.state === 'starting' || w.state === 'spare';
    if (w.finished > 0 && code !== EXIT_CONFIG_ERROR) {
      // It did work before it died (killed from outside, out of memory): replace it at once, no loop.
      this.logger.warn(`worker ${w.id} died (${how}) after finishing ${w.finished} attempt(s); replacing it`);
      return;
    }
    h.crashes = [...h.crashes.filter((c) => c.at > now - CRASH_WINDOW_MS), { at: now, beforeReady }];
    h.consecutiveStartupCrashes = beforeReady ? h.consecutiveStartupCrashes + 1 : 0;
    const recent = h.crashes.length;
    h.respawnNotBefore = now + (recent <= 1 ? 0 : Math.min(30_000, 1000 * 2 ** (recent - 2)));
    this.logger.warn(
      `worker ${w.id} crashed (${how})${beforeReady ? ' before it was ready' : ' before finishing any task'}; ${recent} such crash(es) in the last minute`,
    );
    const reason =
      code === EXIT_CONFIG_ERROR
        ? `worker exited with a configuration error (exit ${code})`
        : h.consecutiveStartupCrashes >= STARTUP_CRASHES_IN_A_ROW
          ? `${h.consecutiveStartupCrashes} workers in a row crashed at start-up (last: ${how})`
          : recent >= CRASHES_PER_WINDOW
            ? `${recent} crashes within a minute (last: ${how})`
            : undefined;
    if (reason && !h.crashLoop) {
      h.crashLoop = { since: now, reason, lastOutput: [...w.tail] };
      this.logger.error(
        `pool ${w.pool} is in a crash loop: ${reason}; no more workers will be started for it until an operator acts. Last output:\n${w.tail.join('\n')}`,
      );
    }
  }

  /** SIGTERM now (the worker drains), SIGKILL if it is still there after `graceMs`. */
  stop(w: ManagedWorker, graceMs: number): Promise<void> {
    if (w.state !== 'draining') {
      w.state = 'draining';
      w.process.kill('SIGTERM');
      const timer = setTimeout(() => {
        this.logger.warn(`worker ${w.id} still running ${graceMs} ms after SIGTERM: SIGKILL`);
        w.process.kill('SIGKILL');
      }, graceMs);
      void w.exited.then(() => clearTimeout(timer));
    }
    return w.exited;
  }

  async stopAll(graceFor: (pool: string) => number): Promise<void> {
    const spares = this.listSpares();
    for (const w of spares) this.retireSpare(w);
    await Promise.all([...this.list().map((w) => this.stop(w, graceFor(w.pool))), ...spares.map((w) => w.exited)]);
  }
}

/** A worker's warnings and errors are repeated in the manager's log. */
const RELAYED_LEVELS = new Set(['warn', 'error', 'fatal']);

/**
 * A worker's own line in the manager's log when it is a warning or an error: its fields (task_id, pool,
 * worker_id) kept. Lines that are not JSON (a crash's stack on stderr) count when they look like errors.
 */
export function relayWorkerLine(logger: { warn(message: unknown): void }, id: string, line: string): void {
  if (line.startsWith('{')) {
    try {
      const { level, msg, time: _time, pid: _pid, app: _app, ...fields } = JSON.parse(line) as Record<string, unknown>;
      if (typeof level === 'string' && RELAYED_LEVELS.has(level)) logger.warn({ ...fields, msg: `[${id}] ${String(msg)}` });
      return;
    } catch {
      // not JSON after all: judged as text below
    }
  }
  if (/ERROR|WARN|error:/.test(line)) logger.warn(`[${id}] ${line}`);
}
