import { Inject, Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type ResourceManagerSettings, RM_SETTINGS } from './rm-settings.js';
import {
  bestEffort,
  checkLayout,
  createRedis,
  delayedScoreDueBy,
  FleetKeys,
  pingWithin,
  waitUntilReady,
  type WorkerRecord,
  WorkerRegistry,
} from '@fleet/redis';

export interface PoolDepth {
  waiting: number;
  delayedDue: number;
  delayed: number;
  active: number;
}

export interface DecisionRecord {
  id?: string;
  at: number;
  pool: string;
  from: number;
  to: number;
  reason: string;
  manager: string;
  inputs: Record<string, unknown>;
}

/** A host as its resource manager describes itself at every tick. */
export interface HostRecord {
  /** The manager's id (one manager per host). */
  id: string;
  hostname: string;
  slots: number;
  /** Pools it may run, each with its limit on this host. */
  pools: Record<string, number>;
  /** Its worker processes by pool (starting, ready and draining): what it runs, as of `at`. */
  workers: Record<string, number>;
  /** Redis time of the beat (ms), and how long the beat lasts. */
  at: number;
  ttl_ms: number;
}

export type Quotas = Record<string, Record<string, number>>;

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const DECISIONS_MAXLEN = 10_000;

/** What the resource manager reads and writes in Redis: queue depths, the worker registry, pins, the lease, decisions. */
@Injectable()
export class FleetStateRepository {
  private readonly redis: Redis;
  private readonly keys: FleetKeys;
  private readonly registry: WorkerRegistry;
  private readonly queues = new Map<string, Queue>();

  constructor(@Inject(RM_SETTINGS) private readonly settings: ResourceManagerSettings) {
    this.keys = new FleetKeys(settings.prefix, settings.spread);
    this.redis = createRedis(settings.redisUrl, 'consumer', `resource-manager:${settings.managerId}`);
    this.registry = new WorkerRegistry(this.redis, this.keys);
  }

  async open(): Promise<void> {
    await waitUntilReady(this.redis, this.settings.redisUrl, 15_000);
    await checkLayout(this.redis, this.keys);
    for (const t of this.settings.templates)
      this.queues.set(t.pool, new Queue(t.pool, { connection: this.redis, prefix: this.keys.queuePrefix(t.pool) }));
  }

  /** The pool's BullMQ events stream (every change of every task of the pool is an entry). */
  eventsKey(pool: string): string {
    return (this.queues.get(pool) as Queue).keys.events;
  }

  /** Waiting (incl. prioritized), active, delayed, and delayed retries due within `dueWithinMs`. */
  async depth(pool: string, dueWithinMs: number): Promise<PoolDepth> {
    const queue = this.queues.get(pool) as Queue;
    const dueBy = Date.now() + dueWithinMs;
    const [counts, due] = await Promise.all([
      queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active'),
      this.redis.zcount(this.keys.queueKey(pool, 'delayed'), 0, delayedScoreDueBy(dueBy)),
    ]);
    return { waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0), delayed: counts.delayed ?? 0, delayedDue: due, active: counts.active ?? 0 };
  }

  /** The pool's completed tasks and their total run time (ms), as the analyzer has counted them so far. */
  async completedRunTime(pool: string): Promise<{ count: number; ms: number }> {
    const [count, ms] = await this.redis.hmget(this.keys.analyzerCounters, `completed:${pool}`, `run_ms:${pool}`);
    return { count: Number(count ?? 0), ms: Number(ms ?? 0) };
  }

  workers(): Promise<WorkerRecord[]> {
    return this.registry.list();
  }

  async pins(): Promise<Map<string, number>> {
    const raw = await this.redis.hgetall(this.keys.pins);
    return new Map(Object.entries(raw).map(([pool, n]) => [pool, Number(n)]));
  }

  async pin(pool: string, workers: number): Promise<void> {
    await this.redis.hset(this.keys.pins, pool, String(workers));
  }

  async unpin(pool: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.pins, pool)) > 0;
  }

  /** Redis's clock (ms): every host's beat and every expiry is judged on it, whatever the hosts' clocks say. */
  async now(): Promise<number> {
    const [s, us] = await this.redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  async beatHost(h: HostRecord): Promise<void> {
    await this.redis.hset(this.keys.hosts, h.id, JSON.stringify(h));
  }

  async leaveHost(id: string): Promise<void> {
    await this.redis.hdel(this.keys.hosts, id);
  }

  /** Every host record, live or not (judge with `at + ttl_ms`). */
  async hosts(): Promise<HostRecord[]> {
    return Object.values(await this.redis.hgetall(this.keys.hosts)).map((v) => JSON.parse(v) as HostRecord);
  }

  async quotas(): Promise<Quotas> {
    const raw = await this.redis.hgetall(this.keys.quotas);
    return Object.fromEntries(Object.entries(raw).map(([host, v]) => [host, JSON.parse(v) as Record<string, number>]));
  }

  /** The lease holder's plan: every live host's quotas; hosts that are gone lose their entry and record. */
  async writeQuotas(quotas: Quotas, gone: readonly string[]): Promise<void> {
    const m = this.redis.multi();
    for (const [host, q] of Object.entries(quotas)) m.hset(this.keys.quotas, host, JSON.stringify(q));
    if (gone.length > 0) m.hdel(this.keys.quotas, ...gone).hdel(this.keys.hosts, ...gone);
    await m.exec();
  }

  /** Takes the lease if it is free, or renews it if this manager holds it; true while this manager acts. */
  async holdLease(): Promise<boolean> {
    const { managerLease } = this.keys;
    const ttl = this.settings.config.leaseTtlMs;
    if ((await this.redis.eval(RENEW, 1, managerLease, this.settings.managerId, ttl)) === 1) return true;
    return (await this.redis.set(managerLease, this.settings.managerId, 'PX', ttl, 'NX')) === 'OK';
  }

  async leaseHolder(): Promise<string | null> {
    return this.redis.get(this.keys.managerLease);
  }

  async releaseLease(): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.keys.managerLease, this.settings.managerId);
  }

  async recordDecision(d: DecisionRecord): Promise<void> {
    await this.redis.xadd(
      this.keys.decisions,
      'MAXLEN',
      '~',
      DECISIONS_MAXLEN,
      '*',
      'at',
      String(d.at),
      'pool',
      d.pool,
      'from',
      String(d.from),
      'to',
      String(d.to),
      'reason',
      d.reason,
      'manager',
      d.manager,
      'inputs',
      JSON.stringify(d.inputs),
    );
  }

  /** Newest first, optionally for one pool. */
  async decisions(limit: number, pool?: string): Promise<DecisionRecord[]> {
    const out: DecisionRecord[] = [];
    let end = '+';
    while (out.length < limit) {
      const batch = await this.redis.xrevrange(this.keys.decisions, end, '-', 'COUNT', 500);
      for (const [id, fields] of batch) {
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
        if (pool !== undefined && f.pool !== pool) continue;
        out.push({
          id,
          at: Number(f.at),
          pool: f.pool ?? '',
          from: Number(f.from),
          to: Number(f.to),
          reason: f.reason ?? '',
          manager: f.manager ?? '',
          inputs: JSON.parse(f.inputs ?? '{}') as Record<string, unknown>,
        });
        if (out.length === limit) break;
      }
      if (batch.length < 500) break;
      end = `(${(batch.at(-1) as [string, string[]])[0]}`;
    }
    return out;
  }

  /** Bounded: `/health` answers 503 within a second when Redis is away. */
  async ping(): Promise<void> {
    await pingWithin(this.redis);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    await bestEffort(this.redis.quit(), 'QUIT');
    this.redis.disconnect();
  }
}
