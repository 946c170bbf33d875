import { Inject, Injectable, Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { ManagedPool } from '@fleet/config';
import { type ResourceManagerSettings, RM_SETTINGS } from './rm-settings.js';
import { bestEffort, type WorkerRecord } from '@fleet/redis';
import {
  applyQuota,
  assignQuotas,
  type Decision,
  decide,
  type HostForPool,
  initialPolicyState,
  type Observation,
  type PolicyState,
} from '@fleet/scaling';
import { hostname } from 'node:os';
import { FleetStateRepository, type HostRecord, type PoolDepth, type Quotas } from './fleet-state.repository.js';
import { HostLoad } from './host-load.js';
import { AppMetrics } from '@fleet/ops';
import type { Counter } from 'prom-client';
import { WorkerSupervisor } from './worker-supervisor.js';
import { TickRunner } from '@fleet/app';

export interface PoolStatus {
  at: number;
  depth: PoolDepth;
  observation: Observation;
  registered: WorkerRecord[];
  pin: number | undefined;
  decision: Decision | undefined;
  /** What the last tick did about the decision (or why it could not). */
  outcome: string;
  /** This host's quota of the pool (undefined until the lease holder has planned it). */
  quota: number | undefined;
  /** The lease holder's plan for the pool (on the holder only). */
  plan?: { quotas: Record<string, number>; unplaced: number; unowned: number };
}

interface Observed {
  cfg: ManagedPool;
  status: PoolStatus;
  registered: WorkerRecord[];
  /** Live processes of the pool fleet-wide: registered ones and this host's not yet registered. */
  alive: number;
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
  /** A pin or a manual change asks for a tick that reads the state after it: one more pass after the current one. */
  private readonly ticks = new TickRunner(
    () => this.runTick(),
    (err) => this.logger.warn(`tick failed: ${err.message}`),
    { rerun: true },
  );
  acting = false;
  /** The hosts and quotas as the last tick saw them. */
  hosts: { at: number; live: HostRecord[]; quotas: Quotas } = { at: 0, live: [], quotas: {} };
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

  /**
   * Whether work arriving in a pool is worth a tick before the interval's (QueueWatch): when the pool is empty
   * (a wake-up, for every strategy), or, for DEMAND, when it is below max_workers; never for a pinned or MANUAL
   * pool. The seed's strategies otherwise keep their cadence (their cooldowns and forecasts count in ticks).
   */
  wantsNudge(pool: string): boolean {
    const cfg = this.settings.config.pools.find((p) => p.pool === pool);
    const status = this.statuses.get(pool);
    if (!cfg?.managed || !status || status.pin !== undefined) return false;
    const current = status.observation.current;
    return current === 0 || (cfg.policy.strategy === 'DEMAND' && current < cfg.policy.maxWorkers);
  }

  status(pool: string): PoolStatus | undefined {
    return this.statuses.get(pool);
  }

  /**
   * Runs a tick now, or once more right after the one in progress (which may have read the state before
   * the caller changed it); resolves when a tick that started after the call has finished.
   */
  tick(): Promise<void> {
    return this.ticks.run();
  }

  private async runTick(): Promise<void> {
    const wasActing = this.acting;
    this.acting = await this.repo.holdLease();
    if (wasActing && !this.acting) this.logger.warn('lost the lease: another resource manager plans the fleet now; this host keeps to its quotas');
    else if (!wasActing && this.acting) this.logger.log(`holding the lease: ${this.settings.managerId} plans the fleet`);

    const [registry, pins] = await Promise.all([this.repo.workers(), this.repo.pins()]);
    this.supervisor.markReady(registry);
    this.supervisor.reapSilent();
    const load = this.host.read();
    const now = await this.repo.now();
    // Beaten before planning (a new host, the planner included, is in this tick's plan) and again after it
    // started or stopped workers (the counts the next plan reads).
    await this.repo.beatHost(this.hostRecord(now));
    const observed = [];
    for (const pool of this.settings.config.pools) observed.push(await this.observe(pool, registry, pins.get(pool.pool), load));

    let quotas = await this.repo.quotas();
    const records = await this.repo.hosts();
    const live = records.filter((h) => h.at + h.ttl_ms >= now);
    this.hosts = { at: now, live, quotas };
    if (this.acting) {
      quotas = this.plan(observed, live, quotas);
      await this.repo.writeQuotas(
        quotas,
        records.filter((h) => !live.includes(h)).map((h) => h.id),
      );
      this.hosts = { at: now, live, quotas };
    }
    for (const o of observed) await this.reconcile(o, quotas[this.settings.managerId]);
    await this.repo.beatHost(this.hostRecord(now));
    this.lastTickAt = Date.now();
  }

  /** This host as the fleet sees it: its slots, its pools with their limits, and its worker processes. */
  private hostRecord(at: number): HostRecord {
    const workers: Record<string, number> = {};
    for (const w of this.supervisor.list()) workers[w.pool] = (workers[w.pool] ?? 0) + 1;
    return {
      id: this.settings.managerId,
      hostname: hostname(),
      slots: this.settings.host.slots,
      pools: this.settings.host.pools,
      workers,
      at,
      ttl_ms: this.settings.config.leaseTtlMs,
    };
  }

  private poolConfig(pool: string): ManagedPool {
    return this.settings.config.pools.find((p) => p.pool === pool) as ManagedPool;
  }

  /** Per pool: the analyzer's completed count and run time at the last tick, and the recent mean task time. */
  private readonly runTimes = new Map<string, { count: number; ms: number; meanMs?: number }>();

  /**
   * What DEMAND reads besides the queue: a task's expected run time in the pool (the mean of the tasks completed
   * since the last tick, smoothed; before any, of all counted so far) and a worker's measured start-up time.
   */
  private async taskTimes(pool: string): Promise<Pick<Observation, 'expectedTaskMs' | 'startupMs'>> {
    const now = await this.repo.completedRunTime(pool);
    const before = this.runTimes.get(pool);
    const recent = before && now.count > before.count ? (now.ms - before.ms) / (now.count - before.count) : undefined;
    const all = now.count > 0 ? now.ms / now.count : undefined;
    const meanMs = recent === undefined ? (before?.meanMs ?? all) : before?.meanMs === undefined ? recent : 0.5 * before.meanMs + 0.5 * recent;
    this.runTimes.set(pool, { ...now, ...(meanMs !== undefined && { meanMs }) });
    const startupMs = this.supervisor.startupMs(pool);
    return { ...(meanMs !== undefined && { expectedTaskMs: Math.max(1, meanMs) }), ...(startupMs !== undefined && { startupMs }) };
  }

  /** Reads a pool's depth and workers fleet-wide and asks the policy for the fleet's size of it. */
  private async observe(
    cfg: ManagedPool,
    registry: WorkerRecord[],
    pin: number | undefined,
    host: { cpuPercent: number; memoryPercent: number },
  ): Promise<Observed> {
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
      slotsPerWorker: cfg.slotsPerWorker,
      ...(cfg.policy.strategy === 'DEMAND' && (await this.taskTimes(cfg.pool))),
    };
    const status: PoolStatus = { at: now, depth, observation, registered, pin, decision: undefined, outcome: 'observed', quota: undefined };
    this.statuses.set(cfg.pool, status);
    if (!cfg.managed) return { cfg, status, registered, alive: registered.length + unregistered.length };
    const { decision, state } = decide(cfg.policy, observation, this.states.get(cfg.pool) ?? initialPolicyState(), pin);
    this.states.set(cfg.pool, state);
    status.decision = decision;
    return { cfg, status, registered, alive: registered.length + unregistered.length };
  }

  /**
   * The lease holder's plan: each pool's desired size spread over the live hosts by free slots, within each
   * host's limit, never planning past max_workers while other hosts still run what they are giving up.
   */
  private plan(observed: Observed[], live: HostRecord[], old: Quotas): Quotas {
    const ids = new Set(live.map((h) => h.id));
    const quotas: Quotas = Object.fromEntries(live.map((h) => [h.id, {}]));
    const costOf = (pool: string) => Math.max(1, this.settings.templates.find((t) => t.pool === pool)?.resources.cpu ?? 1);
    // A managed worker's id is `<manager>-<pool>-<n>` (WorkerSupervisor.start).
    const ownerOf = (w: WorkerRecord) => {
      const at = w.id.lastIndexOf(`-${w.pool}-`);
      const owner = at > 0 ? w.id.slice(0, at) : undefined;
      return owner !== undefined && ids.has(owner) ? owner : undefined;
    };
    for (const o of observed) {
      if (!o.cfg.managed || !o.status.decision) continue;
      const pool = o.cfg.pool;
      const owned = new Map<string, number>();
      let unowned = 0;
      for (const w of o.registered) {
        const owner = ownerOf(w);
        if (owner) owned.set(owner, (owned.get(owner) ?? 0) + 1);
        else unowned++;
      }
      const liveOf = (h: HostRecord) => Math.max(owned.get(h.id) ?? 0, h.workers[pool] ?? 0);
      // A host without an entry yet (the plan was lost, or it just came back) keeps what it runs.
      const quotaOf = (h: HostRecord, p: string) => old[h.id]?.[p] ?? (p === pool ? liveOf(h) : (h.workers[p] ?? 0));
      const hosts: HostForPool[] = live.map((h) => ({
        id: h.id,
        limit: h.pools[pool] ?? 0,
        slots: h.slots,
        usedByOtherPools: Object.keys(h.pools)
          .filter((p) => p !== pool)
          .reduce((s, p) => s + (quotas[h.id]?.[p] ?? quotaOf(h, p)) * costOf(p), 0),
        cost: costOf(pool),
        quota: quotaOf(h, pool),
        live: liveOf(h),
      }));
      const r = assignQuotas({ desired: o.status.decision.desired, maxWorkers: o.cfg.policy.maxWorkers, hosts, unowned });
      for (const h of live) quotas[h.id][pool] = r.quotas[h.id] ?? 0;
      o.status.plan = { quotas: r.quotas, unplaced: r.unplaced, unowned };
    }
    return quotas;
  }

  /** This host's part: start or stop its own workers of the pool to meet its quota. */
  private async reconcile(o: Observed, mine: Record<string, number> | undefined): Promise<void> {
    const { cfg, status } = o;
    if (!cfg.managed) {
      status.outcome = 'MANUAL pool: observed, never scaled';
      return;
    }
    const quota = mine?.[cfg.pool];
    status.quota = quota;
    const own = this.supervisor.list(cfg.pool).filter((w) => w.state !== 'draining');
    if (quota === undefined) {
      status.outcome = this.acting ? 'holding' : 'waiting for this host’s quota from the lease holder';
      return;
    }
    const load = new Map(o.registered.map((r) => [r.id, r.current_tasks.length]));
    const plan = applyQuota({
      quota,
      own,
      load,
      // Every live process counts against max_workers, draining ones and other hosts' included.
      maxWorkers: cfg.policy.maxWorkers,
      alive: o.alive,
      blocked: this.supervisor.blocked(cfg.pool, Date.now()),
      // DEMAND never stops a worker that holds a task; the seed's strategies keep their order (busy last).
      idleOnly: cfg.policy.strategy === 'DEMAND',
    });
    status.outcome = plan.outcome;
    for (let i = 0; i < plan.start; i++) this.supervisor.start(cfg.pool, cfg.workerEnv);
    for (const id of plan.stop) {
      const w = own.find((x) => x.id === id);
      if (w) void this.supervisor.stop(w, cfg.stopGraceMs);
    }
    // As many spares as this host may run workers of the pool, at most: a steady number (the pool going up and
    // down does not end and restart them); none is made while a worker starts, so refills never slow a burst.
    const spares = Math.min(cfg.warmSpares, this.settings.host.pools[cfg.pool] ?? cfg.policy.maxWorkers);
    if (plan.start === 0 && !own.some((w) => w.state === 'starting')) this.supervisor.keepSpares(cfg.pool, cfg.workerEnv, spares);
    const to = own.length + plan.start - plan.stop.length;
    if (to !== own.length) await this.record(cfg, status, own.length, to, quota, plan.stop);
  }

  private async record(cfg: ManagedPool, status: PoolStatus, from: number, to: number, quota: number, stopped: string[]): Promise<void> {
    const o = status.observation;
    const reason = status.decision?.reason ?? '';
    this.logger.log(`pool ${cfg.pool}: ${from} → ${to} on this host (quota ${quota}; ${reason})`);
    this.decisionsTotal.inc({ pool: cfg.pool, direction: to > from ? 'up' : 'down' });
    await this.repo.recordDecision({
      at: o.at,
      pool: cfg.pool,
      from,
      to,
      reason,
      manager: this.settings.managerId,
      inputs: {
        ...o,
        strategy: cfg.policy.strategy,
        min_workers: cfg.policy.minWorkers,
        max_workers: cfg.policy.maxWorkers,
        pin: status.pin ?? null,
        desired: status.decision?.desired ?? null,
        quota,
        // The workers this step stopped (idle ones only: none held a task as far as their heartbeats said).
        stopped,
      },
    });
  }

  /** Stops ticking; drains this manager's workers when `deprovision_on_stop` says so; gives up the lease. */
  async shutdown(): Promise<void> {
    if (this.scheduler.doesExist('interval', TICK)) this.scheduler.deleteInterval(TICK);
    await this.ticks.stop();
    if (this.settings.config.deprovisionOnStop) {
      this.logger.log(`deprovisioning ${this.supervisor.list().length} worker(s)`);
      await this.supervisor.stopAll((pool) => this.poolConfig(pool).stopGraceMs);
    }
    await bestEffort(this.repo.releaseLease(), 'giving up the lease', this.logger);
    // Its quota goes to the other hosts at the holder's next tick, not after the beat expires.
    await bestEffort(this.repo.leaveHost(this.settings.managerId), 'leaving the hosts', this.logger);
  }
}
