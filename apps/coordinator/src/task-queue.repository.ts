import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CoordinatorSettings } from '@fleet/config';
import { FieldErrorsException } from '@fleet/app';
import { compactQueuedTask, type QueuedTask, type RunRef, type Task, type TaskResult } from '@fleet/contracts';
import { bestEffort, createRedis, FleetKeys, pingWithin, taskJobOptions, waitUntilReady, type WorkerRecord, WorkerRegistry } from '@fleet/redis';
import { AppMetrics } from '@fleet/ops';
import type { Counter } from 'prom-client';
import { COORDINATOR_SETTINGS } from './coordinator-settings.js';

export interface NewTask {
  id: string;
  pool: string;
  task: Task;
  /** The run the task is part of, if any. */
  run?: RunRef;
}

/** More commands for the queueing transaction (a run's record, written with its first tasks). */
export type TransactionExtra = (multi: ReturnType<Redis['multi']>) => void;

/**
 * Adds task ids to a client's set of queued tasks in a pool unless that would pass the cap. When it would,
 * ids no longer waiting (not prioritized, delayed or waiting for dependencies) are forgotten first; ids added in
 * the last minute stay (their transaction may not have run yet). The set expires with failed-task retention.
 * KEYS: the client's set, the pool's prioritized, delayed and waiting-children sets.
 * ARGV: cap, now (ms), ttl (s), ids…  Returns {1, count} when added, {0, count} when refused.
 */
const RESERVE_QUEUED = `
local key, cap, now = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local n = #ARGV - 3
local count = redis.call('ZCARD', key)
if count + n > cap then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', now - 60000)) do
    if not redis.call('ZSCORE', KEYS[2], m) and not redis.call('ZSCORE', KEYS[3], m) and not redis.call('ZSCORE', KEYS[4], m) then
      redis.call('ZREM', key, m)
    end
  end
  count = redis.call('ZCARD', key)
  if count + n > cap then return {0, count} end
end
for i = 4, #ARGV, 500 do
  local args = {}
  for j = i, math.min(i + 499, #ARGV) do
    table.insert(args, now)
    table.insert(args, ARGV[j])
  end
  redis.call('ZADD', key, unpack(args))
end
redis.call('EXPIRE', key, ARGV[3])
return {1, count + n}
`;

const tooManyQueued = (pool: string, client: string, count: number, cap: number) => {
  const e = new FieldErrorsException(429, [
    {
      field: 'tasks',
      reason: `client ${client} has ${count} task(s) queued in pool ${pool}; at most ${cap} may wait (MAX_QUEUED_PER_CLIENT): retry when some have run`,
    },
  ]);
  return Object.assign(e, { retryAfterS: 5 });
};

/** What the coordinator remembers of a task it cancelled (BullMQ forgets a removed job). */
export interface CancelledRecord {
  id: string;
  pool: string;
  name: string;
  type: Task['type'];
  priority: number;
  labels: Record<string, string>;
  submitted_by: string;
  queued_at: number;
  cancelled_at: number;
}

export interface PoolScaling {
  pool: string;
  backlog: number;
  in_flight: number;
  waiting: number;
  prioritized: number;
  delayed_due: number;
  delayed_later: number;
  active: number;
}

export type QueueCounts = Record<'waiting' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed', number>;

/** The coordinator's only door to Redis: its queues (one per pool), idempotency keys, cancellations, the worker list. */
@Injectable()
export class TaskQueueRepository implements OnApplicationShutdown {
  private readonly logger = new Logger(TaskQueueRepository.name);
  private readonly redis: Redis & { reserveQueued(...args: Array<string | number>): Promise<[number, number]> };
  private readonly keys: FleetKeys;
  private readonly queues = new Map<string, Queue>();
  private readonly registry: WorkerRegistry;
  private scriptsLoaded = false;

  private readonly queuedTotal: Counter<'pool' | 'type'>;

  constructor(
    @Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings,
    @Inject(AppMetrics) metrics: AppMetrics,
  ) {
    this.queuedTotal = metrics.counter('fleet_tasks_queued_total', 'Tasks queued (runs’ tasks included; repeats of an idempotency key not)', [
      'pool',
      'type',
    ]);
    this.keys = new FleetKeys(settings.prefix);
    this.redis = createRedis(settings.redisUrl, 'producer', 'coordinator') as TaskQueueRepository['redis'];
    this.redis.defineCommand('reserveQueued', { numberOfKeys: 4, lua: RESERVE_QUEUED });
    this.registry = new WorkerRegistry(this.redis, this.keys);
  }

  /** Waits for Redis, then opens one BullMQ queue per pool on the shared connection. */
  async open(timeoutMs = 10_000): Promise<void> {
    await waitUntilReady(this.redis, this.settings.redisUrl, timeoutMs);
    for (const t of this.settings.templates) {
      this.queues.set(t.pool, new Queue(t.pool, { connection: this.redis, prefix: this.keys.bullPrefix }));
    }
    // Ready queues have defined BullMQ's scripts on the shared connection (the transaction needs them).
    await Promise.all([...this.queues.values()].map((q) => q.waitUntilReady()));
    this.logger.log(`queues open for pools: ${[...this.queues.keys()].join(', ')}`);
  }

  get pools(): string[] {
    return [...this.queues.keys()];
  }

  /**
   * The newest jobs of the given pools in the given BullMQ states (each state's list read newest first, at most
   * `limit` from each), with the state each was read in.
   */
  async recentJobs(
    pools: readonly string[],
    states: readonly string[],
    limit: number,
  ): Promise<Array<{ job: Job<QueuedTask, TaskResult>; pool: string; state: string }>> {
    const lists = await Promise.all(
      pools.flatMap((pool) =>
        states.map(async (state) =>
          ((await this.queue(pool).getJobs([state as 'waiting'], 0, limit - 1, false)) as Array<Job<QueuedTask, TaskResult> | undefined>)
            .filter((job): job is Job<QueuedTask, TaskResult> => job !== undefined)
            .map((job) => ({ job, pool, state })),
        ),
      ),
    );
    return lists.flat();
  }

  /** Every pool's queue (for the queue board). */
  allQueues(): Queue[] {
    return [...this.queues.values()];
  }

  hasPool(pool: string): boolean {
    return this.queues.has(pool);
  }

  private queue(pool: string): Queue {
    const q = this.queues.get(pool);
    if (!q) throw new Error(`no queue for pool ${pool}`);
    return q;
  }

  /** The task ids that hold these idempotency keys of the client already (null where none does). */
  async idempotencyHolders(client: string, keys: readonly string[]): Promise<Array<string | null>> {
    if (keys.length === 0) return [];
    return this.redis.mget(...keys.map((k) => this.keys.idempotency(client, k)));
  }

  /**
   * Counts `ids` against the client's cap of tasks queued in the pool (a Lua script: what it checks and what
   * it adds cannot be interleaved with another coordinator). Ids no longer waiting are forgotten when the cap
   * would be reached. Throws a 429 when the cap would be exceeded.
   */
  private async reserve(pool: string, client: string, ids: readonly string[]): Promise<void> {
    const k = this.keys;
    const [ok, count] = await this.redis.reserveQueued(
      k.queuedBy(pool, client),
      k.queueKey(pool, 'prioritized'),
      k.queueKey(pool, 'delayed'),
      k.queueKey(pool, 'waiting-children'),
      this.settings.security.maxQueuedPerClient,
      Date.now(),
      this.settings.retention.failedAgeS,
      ...ids,
    );
    if (ok !== 1) throw tooManyQueued(pool, client, count, this.settings.security.maxQueuedPerClient);
  }

  private async release(pool: string, client: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.zrem(this.keys.queuedBy(pool, client), ...ids);
  }

  /**
   * Queues tasks of any pools and claims idempotency keys (`SET NX GET`) in one MULTI: Redis runs all of it
   * or none of it (a connection lost before EXEC discards the transaction; AOF replays it whole or not at
   * all). Job ids are chosen before the transaction, so running it twice adds nothing twice. Returns, per
   * claim, the id that held the key already (another request won it meanwhile), or null when this one did.
   */
  async enqueue(
    tasks: readonly NewTask[],
    claims: ReadonlyArray<{ key: string; id: string }>,
    client: string,
    extra?: TransactionExtra,
  ): Promise<Array<string | null>> {
    if (tasks.length === 0 && claims.length === 0 && !extra) return [];
    await this.ensureScriptsLoaded();
    const byPool = new Map<string, string[]>();
    for (const t of tasks) byPool.set(t.pool, [...(byPool.get(t.pool) ?? []), t.id]);
    const reserved: Array<[string, string[]]> = [];
    try {
      for (const [pool, ids] of byPool) {
        await this.reserve(pool, client, ids);
        reserved.push([pool, ids]);
      }
      const holders = await this.transact(tasks, claims, client, extra);
      const lost = new Set(claims.filter((_, i) => holders[i] !== null).map((c) => c.id));
      for (const t of tasks) if (!lost.has(t.id)) this.queuedTotal.inc({ pool: t.pool, type: t.task.type });
      return holders;
    } catch (err) {
      await Promise.all(reserved.map(([pool, ids]) => this.release(pool, client, ids))).catch(() => undefined);
      throw err;
    }
  }

  private async transact(
    tasks: readonly NewTask[],
    claims: ReadonlyArray<{ key: string; id: string }>,
    client: string,
    extra: TransactionExtra | undefined,
  ): Promise<Array<string | null>> {
    const ttl = Math.max(this.settings.retention.completedAgeS, this.settings.retention.failedAgeS);
    // Every queue shares this connection: BullMQ's view of it makes a MULTI its scripts can join.
    const multi = (await (this.queues.values().next().value as Queue).backend.client).multi();
    const raw = multi as unknown as ReturnType<Redis['multi']>;
    for (const c of claims) raw.set(this.keys.idempotency(client, c.key), c.id, 'EX', ttl, 'NX', 'GET');
    extra?.(raw);
    const queued: Array<Promise<string>> = [];
    for (const { id, pool, task, run } of tasks) {
      const queue = this.queue(pool);
      const entry = new Job(queue, task.type, compactQueuedTask(task, client, run), taskJobOptions(id, task), id).toFlowEntry();
      // The insert is queued on the transaction synchronously; the promise settles without a round trip.
      queued.push(queue.backend.addJobToTransaction(multi, entry.jobData, entry.jobId));
    }
    try {
      await Promise.all(queued);
      const replies = await raw.exec();
      if (!replies) throw new Error('the queueing transaction was aborted');
      const failed = replies.find(([err]) => err);
      if (failed) throw failed[0] as Error;
      return replies.slice(0, claims.length).map(([, holder]) => (holder as string | null) ?? null);
    } catch (err) {
      this.scriptsLoaded = false;
      throw err;
    }
  }

  /**
   * BullMQ's insert scripts run as EVALSHA inside the transaction, and a NOSCRIPT there would fail those
   * commands alone (and ioredis would run them again outside it). ioredis counts a script as loaded once it
   * has sent it, even in a transaction Redis then refused (out of memory); so before the first transaction,
   * and after any that failed, the scripts are loaded explicitly.
   */
  private async ensureScriptsLoaded(): Promise<void> {
    if (this.scriptsLoaded) return;
    const scripts = (this.redis as unknown as { scriptsSet: Record<string, { lua: string }> }).scriptsSet;
    const inserts = Object.entries(scripts).filter(([name]) => /^add\w*Job:/.test(name));
    if (inserts.length === 0) throw new Error("BullMQ's insert scripts are not defined on the coordinator's connection");
    await Promise.all(inserts.map(([, s]) => this.redis.script('LOAD', s.lua)));
    this.scriptsLoaded = true;
  }

  /**
   * A job and its state. The state is read first: a job only moves forward, so the job read after it is
   * at least as new (never "failed" with the attempt counters of before the failure).
   */
  async getJob(pool: string, id: string): Promise<{ job: Job<QueuedTask, TaskResult>; state: string } | undefined> {
    const queue = this.queue(pool);
    const state = await queue.getJobState(id);
    if (state === 'unknown') return undefined;
    const job = await Job.fromId<QueuedTask, TaskResult>(queue, id);
    return job ? { job, state } : undefined;
  }

  async getCancelled(id: string): Promise<CancelledRecord | undefined> {
    const raw = await this.redis.get(this.keys.cancelled(id));
    return raw ? (JSON.parse(raw) as CancelledRecord) : undefined;
  }

  /**
   * Removes a queued job. The record is written first so a task is never forgotten; BullMQ refuses to
   * remove a job a worker has locked, and then the record is withdrawn and `false` returned.
   */
  async cancel(job: Job<QueuedTask>, record: CancelledRecord): Promise<boolean> {
    const key = this.keys.cancelled(record.id);
    await this.redis.set(key, JSON.stringify(record), 'EX', this.settings.retention.failedAgeS);
    try {
      await job.remove();
      await this.release(record.pool, record.submitted_by, [record.id]);
      return true;
    } catch (err) {
      await this.redis.del(key);
      if (/locked/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  async counts(): Promise<Array<{ pool: string; counts: QueueCounts }>> {
    return Promise.all(
      [...this.queues].map(async ([pool, q]) => {
        const c = await q.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
        return { pool, counts: c as QueueCounts };
      }),
    );
  }

  /**
   * What a pool has to do, for autoscalers (KEDA's metrics-api trigger): `backlog` = waiting + prioritized
   * (BullMQ keeps prioritized tasks out of its wait list, so a trigger on that list alone misses them) + delayed
   * tasks already due (retries whose backoff has passed, not yet moved to wait); `in_flight` adds the running.
   */
  async scaling(pool: string): Promise<PoolScaling> {
    const q = this.queue(pool);
    // BullMQ scores a delayed job by its due time in ms × 0x1000 (+ a counter): due now or earlier is below this.
    const dueBelow = (Date.now() + 1) * 0x1000 - 1;
    const [counts, due] = await Promise.all([
      q.getJobCounts('waiting', 'prioritized', 'delayed', 'active'),
      this.redis.zcount(q.keys.delayed, 0, dueBelow),
    ]);
    const n = (k: string) => counts[k] ?? 0;
    const backlog = n('waiting') + n('prioritized') + due;
    return {
      pool,
      backlog,
      in_flight: backlog + n('active'),
      waiting: n('waiting'),
      prioritized: n('prioritized'),
      delayed_due: due,
      delayed_later: Math.max(0, n('delayed') - due),
      active: n('active'),
    };
  }

  workers(): Promise<WorkerRecord[]> {
    return this.registry.list();
  }

  /** Round trip to Redis, bounded: reachability for `/health`. */
  async ping(): Promise<void> {
    await pingWithin(this.redis);
  }

  async onApplicationShutdown(): Promise<void> {
    await bestEffort(Promise.allSettled([...this.queues.values()].map((q) => q.close())), 'closing the queues');
    await bestEffort(this.redis.quit(), 'QUIT');
    this.redis.disconnect();
  }
}
