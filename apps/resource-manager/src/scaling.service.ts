import { Inject, Injectable, Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { ManagedPool, ResourceManagerSettings } from '@fleet/config';
import { bestEffort, type WorkerRecord } from '@fleet/redis';
import { type Decision, decide, initialPolicyState, type Observation, type PolicyState } from '@fleet/scaling';
import { FleetStateRepository, type PoolDepth } from './fleet-state.repository.js';
import { HostLoad } from './host-load.js';
import { AppMetrics } from '@fleet/ops';
import type { Counter } from 'prom-client';
import { RM_SETTINGS } from './rm-settings.js';
import { type ManagedWorker, WorkerSupervisor } from './worker-supervisor.js';

export interface PoolStatus {
  at: number;
  depth: PoolDepth;
  observation: Observation;
  registered: WorkerRecord[];
  pin: number | undefined;
  decision: Decision | undefined;
  /** What the last tick did about the decision (or why it could not). */
  outcome: string;
}

const TICK = 'scaling-tick';

/**
 * The scaling tick: every `polling_interval` (never two at once) it reads each pool's queue depth and
 * workers, asks the pure policy for a size, and, while this manager holds the lease, starts or stops
 * worker processes and records what it did. A manager without the lease observes only.
 */
@Injectable()
export class ScalingService {
  private readonly logger = new Logger(ScalingService.name);
  private readonly states = new Map<string, PolicyState>();
  private readonly statuses = new Map<string, PoolStatus>();
  private readonly host = new HostLoad();
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private stopped = false;
  acting = false;
  /** When the last tick finished (0: none yet): until then this manager does not know the lease's state. */
  lastTickAt = 0;
  private readonly decisionsTotal: Counter<'pool' | 'direction'>;

  constructor(
    @Inject(RM_SETTINGS) private readonly settings: ResourceManagerSettings,
    private readonly repo: FleetStateRepository,
    private readonly supervisor: WorkerSupervisor,
    private readonly scheduler: SchedulerRegistry,
    @Inject(AppMetrics) metrics: AppMetrics,
  ) {
    this.decisionsTotal = metrics.counter(
      'fleet_scaling_decisions_total',
      'Workers started or stopped by this manager’s decisions, by pool and direction (up, down)',
      ['pool', 'direction'],
    );
  }

  schedule(): void {
    this.scheduler.addInterval(
      TICK,
      setInterval(() => void this.tick(), this.settings.config.pollingIntervalMs),
    );
  }

  status(pool: string): PoolStatus | undefined {
    return this.statuses.get(pool);
  }

  /**
   * Runs a tick now, or once more right after the one in progress (which may have read the state before
   * the caller changed it); resolves when a tick that started after the call has finished.
   */
  tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.next ??= this.running.then(() => {
        this.next = undefined;
        return this.tick();
      });
      return this.next;
    }
    this.running = this.runTick()
      .catch((err: Error) => this.logger.warn(`tick failed: ${err.message}`))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async runTick(): Promise<void> {
    const wasActing = this.acting;
    this.acting = await this.repo.holdLease();
    if (wasActing && !this.acting) {
      this.logger.warn('lost the lease: another resource manager acts now; draining this one’s workers');
      await this.supervisor.stopAll((pool) => this.poolConfig(pool).stopGraceMs);
    } else if (!wasActing && this.acting) this.logger.log(`holding the lease: ${this.settings.managerId} acts for the fleet`);

    const [registry, pins] = await Promise.all([this.repo.workers(), this.repo.pins()]);
    this.supervisor.markReady(registry);
    const host = this.host.read();
    for (const pool of this.settings.config.pools) {
      await this.tickPool(pool, registry, pins.get(pool.pool), host);
    }
    this.lastTickAt = Date.now();
  }

  private poolConfig(pool: string): ManagedPool {
    return this.settings.config.pools.find((p) => p.pool === pool) as ManagedPool;
  }

  private async tickPool(
    cfg: ManagedPool,
    registry: WorkerRecord[],
    pin: number | undefined,
    host: { cpuPercent: number; memoryPercent: number },
  ): Promise<void> {
    const now = Date.now();
    const depth = await this.repo.depth(cfg.pool, this.settings.config.pollingIntervalMs);
    const registered = registry.filter((r) => r.pool === cfg.pool);
    const registeredIds = new Set(registered.map((r) => r.id));
    const mine = this.supervisor.list(cfg.pool);
    // This manager's own children count by their process, whether or not the registry lists them: one still
    // starting has not registered yet, and after Redis lost its data none is registered until its next beat.
    const unregistered = mine.filter((w) => !registeredIds.has(w.id));
    const starting = unregistered.filter((w) => w.state !== 'draining');
    const draining = new Set([
      ...mine.filter((w) => w.state === 'draining').map((w) => w.id),
      ...registered.filter((r) => r.status === 'draining').map((r) => r.id),
    ]);
    const counted = registered.filter((r) => !draining.has(r.id));
    const observation: Observation = {
      at: now,
      waiting: depth.waiting,
      delayedDue: depth.delayedDue,
      active: depth.active,
      current: counted.length + starting.length,
      busy: counted.filter((r) => r.current_tasks.length > 0).length,
      hostCpuPercent: host.cpuPercent,
      hostMemoryPercent: host.memoryPercent,
    };
    const status: PoolStatus = { at: now, depth, observation, registered, pin, decision: undefined, outcome: 'observed' };
    this.statuses.set(cfg.pool, status);
    if (!cfg.managed) {
      status.outcome = 'MANUAL pool: observed, never scaled';
      return;
    }
    const { decision, state } = decide(cfg.policy, observation, this.states.get(cfg.pool) ?? initialPolicyState(), pin);
    this.states.set(cfg.pool, state);
    status.decision = decision;
    if (!this.acting) {
      status.outcome = 'standby: another resource manager holds the lease';
      return;
    }
    // Every live process counts against max_workers, draining ones and other hosts' included.
    const alive = registered.length + unregistered.length;
    if (decision.desired > observation.current) {
      const blocked = this.supervisor.blocked(cfg.pool, now);
      const room = Math.max(0, cfg.policy.maxWorkers - alive);
      const n = blocked ? 0 : Math.min(decision.desired - observation.current, room);
      for (let i = 0; i < n; i++) this.supervisor.start(cfg.pool, cfg.workerEnv);
      status.outcome = blocked
        ? `not starting: ${blocked}`
        : n < decision.desired - observation.current
          ? `started ${n}: only room for ${room} under max_workers while others drain`
          : `started ${n}`;
      if (n > 0) await this.record(cfg, observation, pin, observation.current, observation.current + n, decision.reason);
    } else if (decision.desired < observation.current) {
      const victims = this.pickToStop(mine, registered, observation.current - decision.desired);
      for (const w of victims) void this.supervisor.stop(w, cfg.stopGraceMs);
      status.outcome =
        victims.length < observation.current - decision.desired
          ? `stopping ${victims.length}: the others are not this manager’s to stop`
          : `stopping ${victims.length}`;
      if (victims.length > 0) await this.record(cfg, observation, pin, observation.current, observation.current - victims.length, decision.reason);
    } else {
      status.outcome = 'holding';
    }
  }

  /** Idle workers first, then ones still starting, then the least busy. Only this manager's own. */
  private pickToStop(mine: ManagedWorker[], registered: WorkerRecord[], n: number): ManagedWorker[] {
    const load = new Map(registered.map((r) => [r.id, r.current_tasks.length]));
    const rank = (w: ManagedWorker) => (w.state === 'starting' ? 0.5 : (load.get(w.id) ?? 0) === 0 ? 0 : 1 + (load.get(w.id) ?? 0));
    return mine
      .filter((w) => w.state !== 'draining')
      .sort((a, b) => rank(a) - rank(b))
      .slice(0, n);
  }

  private async record(cfg: ManagedPool, o: Observation, pin: number | undefined, from: number, to: number, reason: string): Promise<void> {
    this.logger.log(`pool ${cfg.pool}: ${from} → ${to} (${reason})`);
    this.decisionsTotal.inc({ pool: cfg.pool, direction: to > from ? 'up' : 'down' });
    await this.repo.recordDecision({
      at: o.at,
      pool: cfg.pool,
      from,
      to,
      reason,
      manager: this.settings.managerId,
      inputs: { ...o, strategy: cfg.policy.strategy, min_workers: cfg.policy.minWorkers, max_workers: cfg.policy.maxWorkers, pin: pin ?? null },
    });
  }

  /** Stops ticking; drains this manager's workers when `deprovision_on_stop` says so; gives up the lease. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.scheduler.doesExist('interval', TICK)) this.scheduler.deleteInterval(TICK);
    await this.running;
    if (this.settings.config.deprovisionOnStop) {
      this.logger.log(`deprovisioning ${this.supervisor.list().length} worker(s)`);
      await this.supervisor.stopAll((pool) => this.poolConfig(pool).stopGraceMs);
    }
    await bestEffort(this.repo.releaseLease(), 'giving up the lease', this.logger);
  }
}
