import { Inject, Injectable } from '@nestjs/common';
import { conflict, notFound, unprocessable } from '@fleet/app';
import type { ManagedPool } from '@fleet/config';
import { type ResourceManagerSettings, RM_SETTINGS } from './rm-settings.js';
import { type CrashLoop, WorkerSupervisor } from './worker-supervisor.js';
import { FleetStateRepository, type HostRecord } from './fleet-state.repository.js';
import { ScalingService } from './scaling.service.js';

export interface PoolView {
  pool: string;
  provider: 'LOCAL' | 'MANUAL';
  strategy: string;
  min_workers: number;
  max_workers: number;
  mode: 'auto' | 'pinned';
  pinned_workers: number | null;
  desired: number | null;
  running: number;
  ready: number;
  busy: number;
  draining: number;
  /** Warm spares this manager keeps for the pool: loaded, waiting, not workers (`warm_spares`). */
  spares: Array<{ id: string; pid: number }>;
  /** How long this manager's workers of the pool took to start, as measured (ms; null before the first). */
  startup_ms: number | null;
  depth: { waiting: number; delayed: number; delayed_due: number; active: number } | null;
  workers: Array<{
    id: string;
    host: string;
    pid: number;
    status: string;
    current_tasks: string[];
    /** Attempts it has finished (completed or failed), as of its last heartbeat. */
    finished: number;
    started_by_this_manager: boolean;
  }>;
  last_decision: { at: string; desired: number; action: string; reason: string; outcome: string } | null;
  crash_loop: CrashLoop | null;
  acting: boolean;
  /** This host's quota of the pool, from the lease holder's plan (null until planned). */
  quota: number | null;
  /** The plan across hosts: host id → quota (as this manager last read it). */
  quotas: Record<string, number>;
}

/** A live host as `GET /hosts` shows it: its record, its quotas from the plan, and who it is. */
export type HostView = Omit<HostRecord, 'at' | 'ttl_ms'> & {
  /** Its quotas by pool, from the lease holder's plan. */
  quotas: Record<string, number>;
  last_beat: string;
  holds_lease: boolean;
  this_manager: boolean;
};

/** What operators see and steer: pool views, pins (validated against the pool's limits), decisions. */
@Injectable()
export class PoolsService {
  constructor(
    @Inject(RM_SETTINGS) private readonly settings: ResourceManagerSettings,
    private readonly scaling: ScalingService,
    private readonly supervisor: WorkerSupervisor,
    private readonly repo: FleetStateRepository,
  ) {}

  private config(pool: string): ManagedPool {
    const cfg = this.settings.config.pools.find((p) => p.pool === pool);
    if (!cfg) throw notFound('pool', `no pool "${pool}"; pools: ${this.settings.config.pools.map((p) => p.pool).join(', ')}`);
    return cfg;
  }

  list(): PoolView[] {
    return this.settings.config.pools.map((p) => this.view(p));
  }

  get(pool: string): PoolView {
    return this.view(this.config(pool));
  }

  private view(cfg: ManagedPool): PoolView {
    const s = this.scaling.status(cfg.pool);
    const mine = new Map(this.supervisor.list(cfg.pool).map((w) => [w.id, w]));
    const registered = s?.registered ?? [];
    const startingOnly = [...mine.values()].filter((w) => !registered.some((r) => r.id === w.id));
    const isDraining = (id: string, status: string) => status === 'draining' || mine.get(id)?.state === 'draining';
    return {
      pool: cfg.pool,
      provider: cfg.managed ? 'LOCAL' : 'MANUAL',
      strategy: cfg.policy.strategy,
      min_workers: cfg.policy.minWorkers,
      max_workers: cfg.policy.maxWorkers,
      mode: s?.pin !== undefined ? 'pinned' : 'auto',
      pinned_workers: s?.pin ?? null,
      desired: s?.decision?.desired ?? null,
      running: registered.length + startingOnly.length,
      ready: registered.filter((r) => !isDraining(r.id, r.status)).length,
      busy: registered.filter((r) => r.current_tasks.length > 0).length,
      draining: registered.filter((r) => isDraining(r.id, r.status)).length,
      spares: this.supervisor
        .listSpares(cfg.pool)
        .filter((w) => w.state === 'spare')
        .map((w) => ({ id: w.id, pid: w.pid })),
      startup_ms: this.supervisor.startupMs(cfg.pool) ?? null,
      depth: s ? { waiting: s.depth.waiting, delayed: s.depth.delayed, delayed_due: s.depth.delayedDue, active: s.depth.active } : null,
      workers: [
        ...registered.map((r) => ({
          id: r.id,
          host: r.host,
          pid: r.pid,
          status: isDraining(r.id, r.status) ? 'draining' : 'ready',
          current_tasks: r.current_tasks,
          finished: r.completed + r.failed,
          started_by_this_manager: mine.has(r.id),
        })),
        ...startingOnly.map((w) => ({
          id: w.id,
          host: '',
          pid: w.pid,
          status: w.state,
          current_tasks: [],
          finished: w.finished,
          started_by_this_manager: true,
        })),
      ],
      last_decision: s?.decision
        ? { at: new Date(s.at).toISOString(), desired: s.decision.desired, action: s.decision.action, reason: s.decision.reason, outcome: s.outcome }
        : null,
      crash_loop: this.supervisor.crashLoop(cfg.pool) ?? null,
      acting: this.scaling.acting,
      quota: s?.quota ?? null,
      quotas: Object.fromEntries(
        Object.entries(this.scaling.hosts.quotas).flatMap(([host, q]) => (q[cfg.pool] !== undefined ? [[host, q[cfg.pool]]] : [])),
      ),
    };
  }

  /** The live hosts (their managers beat within the lease's time), with their quotas. */
  async hosts(): Promise<{ hosts: HostView[]; lease_holder: string | null }> {
    const holder = await this.repo.leaseHolder();
    const { live, quotas } = this.scaling.hosts;
    return {
      lease_holder: holder,
      hosts: live.map((h) => ({
        id: h.id,
        hostname: h.hostname,
        slots: h.slots,
        pools: h.pools,
        workers: h.workers,
        quotas: quotas[h.id] ?? {},
        last_beat: new Date(h.at).toISOString(),
        holds_lease: h.id === holder,
        this_manager: h.id === this.settings.managerId,
      })),
    };
  }

  /** Pins a pool's size (0..max_workers); survives restarts (it lives in Redis). Clears a crash loop. */
  async pin(pool: string, workers: number): Promise<PoolView> {
    const cfg = this.config(pool);
    if (!cfg.managed) throw conflict('pool', `pool ${pool} is MANUAL: its workers are started by hand, not by the resource manager`);
    if (workers > cfg.policy.maxWorkers) {
      throw unprocessable([{ field: 'workers', reason: `must be at most max_workers (${cfg.policy.maxWorkers}) of pool ${pool}` }]);
    }
    await this.repo.pin(pool, workers);
    this.supervisor.resetCrashes(pool);
    await this.scaling.tick();
    return this.get(pool);
  }

  async unpin(pool: string): Promise<PoolView> {
    this.config(pool);
    await this.repo.unpin(pool);
    this.supervisor.resetCrashes(pool);
    await this.scaling.tick();
    return this.get(pool);
  }
}
