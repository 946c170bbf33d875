import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Job, type JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import { FieldErrorsException } from '@fleet/app';
import { compactQueuedTask, type QueuedTask, type RunRef, type Task, type TaskResult } from '@fleet/contracts';
import {
  bestEffort,
  checkLayout,
  createRedis,
  FleetKeys,
  pingWithin,
  taskJobOptions,
  waitUntilReady,
  type WorkerRecord,
  WorkerRegistry,
} from '@fleet/redis';
import { AppMetrics } from '@fleet/ops';
import type { Counter } from 'prom-client';

/** One task of a batch as its pool's queue takes it. */
export interface BatchEntry {
  pool: string;
  id: string;
  name: string;
  data: Record<string, unknown>;
  opts: JobsOptions;
  /** The idempotency key this task claimed. */
  key?: string;
}

/** A batch over spread pools, recorded before its parts are queued (`recordBatch`). */
export interface PendingBatch {
  client: string;
  /** When it was recorded (ms, the coordinator's clock). */
  at: number;
  entries: BatchEntry[];
}

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

/** How often, at most, a coordinator looks for pending batches to settle. */
const SETTLE_EVERY_MS = 2000;

/** Items grouped by a key, in order (values mapped by `value`). */
function groupBy<T, V = T>(items: readonly T[], key: (t: T) => string, value: (t: T) => V = (t) => t as unknown as V): Map<string, V[]> {
  const groups = new Map<string, V[]>();
  for (const t of items) {
    const k = key(t);
    const g = groups.get(k);
    if (g) g.push(value(t));
    else groups.set(k, [value(t)]);
  }
  return groups;
}

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

/** The coordinator's queues in Redis (one per pool), with idempotency keys, cancellations and the worker list (runs have RunsRepository). */
@Injectable()
export class TaskQueueRepository implements OnApplicationShutdown {
  private readonly logger = new Logger(TaskQueueRepository.name);
  private readonly redis: Redis & { reserveQueued(...args: Array<string | number>): Promise<[number, number]> };
  private readonly keys: FleetKeys;
  private readonly queues = new Map<string, Queue>();
  private readonly registry: WorkerRegistry;
  private scriptsLoaded = false;
  private lastSettle = 0;

  private readonly queuedTotal: Counter<'pool' | 'type'>;

  constructor(
    @Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings,
    @Inject(AppMetrics) metrics: AppMetrics,
  ) {
    this.queuedTotal = metrics.counter('fleet_tasks_queued_total', 'Tasks queued (runs’ tasks included; repeats of an idempotency key not)', [
      'pool',
      'type',
    ]);
    this.keys = new FleetKeys(settings.prefix, settings.spread);
    this.redis = createRedis(settings.redisUrl, 'producer', 'coordinator') as TaskQueueRepository['redis'];
    this.redis.defineCommand('reserveQueued', { numberOfKeys: 4, lua: RESERVE_QUEUED });
    this.registry = new WorkerRegistry(this.redis, this.keys);
  }

  /** Waits for Redis, then opens one BullMQ queue per pool on the shared connection. */
  async open(timeoutMs = 10_000): Promise<void> {
    await waitUntilReady(this.redis, this.settings.redisUrl, timeoutMs);
    await checkLayout(this.redis, this.keys);
    for (const t of this.settings.templates) {
      this.queues.set(t.pool, new Queue(t.pool, { connection: this.redis, prefix: this.keys.queuePrefix(t.pool) }));
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
   * Queues tasks of any pools and claims idempotency keys (`SET NX GET`), all or nothing. With every pool in
   * the fleet's slot (the default) that is one MULTI: Redis runs all of it or none of it (a connection lost
   * before EXEC discards the transaction; AOF replays it whole or not at all). Job ids are chosen before the
   * transaction, so running it twice adds nothing twice. With pools spread over slots, see `recordBatch`.
   * Returns, per claim, the id that held the key already (another request won it meanwhile), or null when
   * this one did.
   */
  async enqueue(
    tasks: readonly NewTask[],
    claims: ReadonlyArray<{ key: string; id: string }>,
    client: string,
    extra?: TransactionExtra,
  ): Promise<Array<string | null>> {
    if (tasks.length === 0 && claims.length === 0 && !extra) return [];
    await this.ensureScriptsLoaded();
    const byPool = groupBy(
      tasks,
      (t) => t.pool,
      (t) => t.id,
    );
    const reserved: Array<[string, string[]]> = [];
    let holders: Array<string | null>;
    try {
      for (const [pool, ids] of byPool) {
        await this.reserve(pool, client, ids);
        reserved.push([pool, ids]);
      }
      const spread = this.keys.spread === 'pools' && (claims.length > 0 || extra !== undefined || byPool.size > 1);
      holders = spread ? await this.recordBatch(randomUUID(), tasks, claims, client, extra) : await this.transact(tasks, claims, client, extra);
    } catch (err) {
      // A recorded batch will be queued whole: its tasks keep their places under the cap.
      if (!(err as { recorded?: boolean }).recorded) {
        await Promise.all(reserved.map(([pool, ids]) => this.release(pool, client, ids))).catch(() => undefined);
      }
      throw err;
    }
    const lost = new Set(claims.filter((_, i) => holders[i] !== null).map((c) => c.id));
    for (const t of tasks) if (!lost.has(t.id)) this.queuedTotal.inc({ pool: t.pool, type: t.task.type });
    return holders;
  }

  /** The MULTI a pool's queue can join (on a cluster, it goes to the node of the first key it is given). */
  private async multiFor(pool: string): Promise<ReturnType<Redis['multi']>> {
    return (await this.queue(pool).backend.client).multi() as unknown as ReturnType<Redis['multi']>;
  }

  /** Queues a job on a transaction (synchronously; the promise settles without a round trip). */
  private addToTransaction(multi: ReturnType<Redis['multi']>, e: BatchEntry): Promise<string> {
    const queue = this.queue(e.pool);
    const entry = new Job(queue, e.name, e.data, e.opts, e.id).toFlowEntry();
    return queue.backend.addJobToTransaction(multi as never, entry.jobData, entry.jobId);
  }

  private entryOf({ id, pool, task, run }: NewTask, client: string): BatchEntry {
    return { pool, id, name: task.type, data: compactQueuedTask(task, client, run), opts: taskJobOptions(id, task) };
  }

  private get claimTtlS(): number {
    return Math.max(this.settings.retention.completedAgeS, this.settings.retention.failedAgeS);
  }

  private async transact(
    tasks: readonly NewTask[],
    claims: ReadonlyArray<{ key: string; id: string }>,
    client: string,
    extra: TransactionExtra | undefined,
  ): Promise<Array<string | null>> {
    // Every queue shares this connection: BullMQ's view of it makes a MULTI its scripts can join.
    const raw = await this.multiFor(tasks[0]?.pool ?? this.pools[0]);
    for (const c of claims) raw.set(this.keys.idempotency(client, c.key), c.id, 'EX', this.claimTtlS, 'NX', 'GET');
    extra?.(raw);
    const queued = tasks.map((t) => this.addToTransaction(raw, this.entryOf(t, client)));
    const replies = await this.exec(raw, queued);
    return replies.slice(0, claims.length).map(([, holder]) => (holder as string | null) ?? null);
  }

  private async exec(raw: ReturnType<Redis['multi']>, queued: Array<Promise<string>>): Promise<Array<[Error | null, unknown]>> {
    try {
      await Promise.all(queued);
      const replies = await raw.exec();
      if (!replies) throw new Error('the queueing transaction was aborted');
      const failed = replies.find(([err]) => err);
      if (failed) throw failed[0] as Error;
      return replies;
    } catch (err) {
      this.scriptsLoaded = false;
      throw err;
    }
  }

  /**
   * A batch over spread pools: a transaction can hold one slot only, so the batch goes in two steps.
   * 1. In the fleet's slot, one MULTI claims the idempotency keys, writes the run's record (`extra`) and
   *    records the whole batch as pending (`pendingBatches`). Refused or lost, it leaves nothing: the client
   *    gets an error and nothing is queued.
   * 2. Each pool's part is queued in a MULTI of its own slot, with a mark that it was (`batchPart`); then the
   *    pending record goes. A failure here (a shard refusing writes, this coordinator dying) leaves the record:
   *    every coordinator settles records older than `PENDING_SETTLE_MS` by queueing the parts not yet marked,
   *    and a request that meets a key whose task is still pending settles it at once. So a recorded batch is
   *    queued whole, each task once, and a key always names a task that is (or is about to be) queued.
   * Returns what `transact` returns.
   */
  private async recordBatch(
    batchId: string,
    tasks: readonly NewTask[],
    claims: ReadonlyArray<{ key: string; id: string }>,
    client: string,
    extra?: TransactionExtra,
  ): Promise<Array<string | null>> {
    const { holders, batch } = await this.recordPending(batchId, tasks, claims, client, extra);
    const lost = new Set(claims.filter((_, i) => holders[i] !== null).map((c) => c.id));
    try {
      await this.queueParts(batchId, batch, (e) => !lost.has(e.id));
    } catch (err) {
      this.logger.warn(`batch ${batchId} recorded, not yet queued whole (settled later): ${(err as Error).message}`);
      const e = new FieldErrorsException(503, [
        {
          field: 'tasks',
          reason: `the batch is recorded (${batchId}) but a pool's Redis shard refused its part (${(err as Error).message}); it will be queued whole once the shard takes writes again: retry with the same idempotency keys to learn the tasks' ids`,
        },
      ]);
      throw Object.assign(e, { retryAfterS: 5, recorded: true });
    }
    return holders;
  }

  /** Step 1 of a spread batch (`recordBatch`); public so a test can stop after it, as a crash would. */
  async recordPending(
    batchId: string,
    tasks: readonly NewTask[],
    claims: ReadonlyArray<{ key: string; id: string }>,
    client: string,
    extra?: TransactionExtra,
  ): Promise<{ holders: Array<string | null>; batch: PendingBatch }> {
    const keyOf = new Map(claims.map((c) => [c.id, c.key]));
    const batch: PendingBatch = {
      client,
      at: Date.now(),
      entries: tasks.map((t) => ({ ...this.entryOf(t, client), ...(keyOf.has(t.id) && { key: keyOf.get(t.id) }) })),
    };
    const raw = this.redis.multi();
    for (const c of claims) raw.set(this.keys.idempotency(client, c.key), c.id, 'EX', this.claimTtlS, 'NX', 'GET');
    extra?.(raw);
    raw.hset(this.keys.pendingBatches, batchId, JSON.stringify(batch));
    const replies = await this.exec(raw, []);
    return { holders: replies.slice(0, claims.length).map(([, holder]) => (holder as string | null) ?? null), batch };
  }

  /** Step 2 of a spread batch: each pool's part not yet marked, in its own slot's MULTI; then the record goes. */
  private async queueParts(batchId: string, batch: PendingBatch, keep: (e: BatchEntry) => boolean): Promise<void> {
    const byPool = groupBy(batch.entries.filter(keep), (e) => e.pool);
    const unknown = [...byPool.keys()].filter((pool) => !this.queues.has(pool));
    // Another coordinator (with that pool in its config) settles it; forgetting the part would lose its tasks.
    if (unknown.length > 0) throw new Error(`pool(s) ${unknown.join(', ')} unknown to this coordinator`);
    await Promise.all(
      [...byPool].map(async ([pool, entries]) => {
        const mark = this.keys.batchPart(pool, batchId);
        // Looked at even on the first pass: a request that met one of the batch's keys may have queued this part
        // already, and its tasks may be done and trimmed by now.
        if ((await this.redis.exists(mark)) === 1) return;
        const raw = await this.multiFor(pool);
        const queued = entries.map((e) => this.addToTransaction(raw, e));
        raw.set(mark, '1', 'EX', this.claimTtlS);
        await this.exec(raw, queued);
      }),
    );
    await this.redis.hdel(this.keys.pendingBatches, batchId);
  }

  /**
   * Queues what pending batches still owe (spread pools): those recorded more than `minAgeMs` ago (their
   * coordinator died or a shard refused them; looked at every SETTLE_EVERY_MS at most), or, with `taskId`, any
   * that holds that task. A task whose key another task holds is skipped, as its coordinator would have.
   * A batch that cannot be settled yet stays for the next pass. Returns how many batches were settled.
   */
  async settlePending(minAgeMs: number, taskId?: string): Promise<number> {
    if (this.keys.spread !== 'pools') return 0;
    if (taskId === undefined) {
      if (Date.now() - this.lastSettle < SETTLE_EVERY_MS) return 0;
      this.lastSettle = Date.now();
    }
    await this.ensureScriptsLoaded();
    let settled = 0;
    for (const [batchId, json] of Object.entries(await this.redis.hgetall(this.keys.pendingBatches))) {
      const batch = JSON.parse(json) as PendingBatch;
      if (taskId !== undefined ? !batch.entries.some((e) => e.id === taskId) : Date.now() - batch.at < minAgeMs) continue;
      try {
        const keyed = batch.entries.filter((e) => e.key !== undefined);
        const holders = keyed.length === 0 ? [] : await this.redis.mget(...keyed.map((e) => this.keys.idempotency(batch.client, e.key as string)));
        const lost = new Set(keyed.filter((e, i) => holders[i] !== e.id).map((e) => e.id));
        await this.queueParts(batchId, batch, (e) => !lost.has(e.id));
        this.logger.log(`pending batch ${batchId} settled (${batch.entries.length - lost.size} task(s) of ${batch.client})`);
        settled++;
      } catch (err) {
        this.logger.warn(`pending batch ${batchId} not settled yet: ${(err as Error).message}`);
        if (taskId !== undefined) throw err;
      }
    }
    return settled;
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
