import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';
import { compactQueuedTask, type QueuedTask, type RunRef, type Task, type TaskResult } from '@fleet/contracts';
import {
  bestEffort,
  checkLayout,
  createRedis,
  delayedScoreDueBy,
  FleetKeys,
  pingWithin,
  taskJobOptions,
  type Transaction,
  trimIndex,
  unlinkAll,
  waitUntilReady,
  type WorkerRecord,
  WorkerRegistry,
} from '@fleet/redis';
import { AppMetrics } from '@fleet/ops';
import type { Counter } from 'prom-client';
import { QueuedCap } from './queued-cap.js';
import { type BatchEntry, type Claim, QueueTransactions } from './queue-transactions.js';
import { groupBy, SpreadBatches } from './spread-batches.js';
import { QueueSet } from './queue-set.js';

export type { BatchEntry } from './queue-transactions.js';
export type { PendingBatch } from './spread-batches.js';

/** How long a pending idempotency claim lives: a request queues its tasks well within it, or has died. */
export const PENDING_CLAIM_MS = 60_000;

/**
 * Deletes a key only while it holds the given value. `allow-oom`: a claim is given back when its transaction
 * was refused, out of memory included (DEL frees memory; Redis refuses a script without the flag then).
 */
const RELEASE_CLAIM = `#!lua flags=allow-oom
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface NewTask {
  id: string;
  pool: string;
  task: Task;
  /** The run the task is part of, if any. */
  run?: RunRef;
}

/** More commands for the queueing transaction (a run's record, written with its first tasks). */
export type TransactionExtra = (multi: Transaction) => void;

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

/**
 * The coordinator's queues in Redis (one per pool): queueing (with the per-client cap, `QueuedCap`, and the
 * transactions, `QueueTransactions` and `SpreadBatches`), cancellation, and what the API reads of them. Runs'
 * own keys are RunsRepository's.
 */
@Injectable()
export class TaskQueueRepository implements OnApplicationShutdown {
  private readonly logger = new Logger(TaskQueueRepository.name);
  private readonly redis: Redis & { releaseClaim(key: string, value: string): Promise<number> };
  /** The queueing MULTIs' own connection (`QueueTransactions`). */
  private readonly inserts: Redis;
  private readonly keys: FleetKeys;
  private readonly queues: QueueSet;
  private readonly registry: WorkerRegistry;
  private readonly cap: QueuedCap;
  private readonly tx: QueueTransactions;
  private readonly batches: SpreadBatches;

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
    this.redis.defineCommand('releaseClaim', { numberOfKeys: 1, lua: RELEASE_CLAIM });
    this.registry = new WorkerRegistry(this.redis, this.keys);
    this.queues = new QueueSet(
      this.redis,
      this.keys,
      settings.templates.map((t) => t.pool),
    );
    // Claims last as long as the tasks they name are kept.
    const claimTtlS = Math.max(settings.retention.completedAgeS, settings.retention.failedAgeS);
    this.cap = new QueuedCap(this.redis, this.keys, settings.security.maxQueuedPerClient, settings.retention.failedAgeS);
    this.inserts = createRedis(settings.redisUrl, 'producer', 'coordinator-inserts');
    this.tx = new QueueTransactions(this.redis, this.inserts, this.keys, (pool) => this.queue(pool), claimTtlS);
    this.batches = new SpreadBatches(this.redis, this.keys, this.tx, (pool) => this.queues.has(pool), claimTtlS);
  }

  /** Waits for Redis, then opens one BullMQ queue per pool on the shared connection. */
  async open(timeoutMs = 10_000): Promise<void> {
    await waitUntilReady(this.redis, this.settings.redisUrl, timeoutMs);
    await checkLayout(this.redis, this.keys);
    // Ready queues have defined BullMQ's scripts on the shared connection; the queueing connection copies the inserts.
    await Promise.all(this.queues.configured().map((q) => q.waitUntilReady()));
    this.tx.open();
    await waitUntilReady(this.inserts, this.settings.redisUrl, timeoutMs);
    this.logger.log(`queues open for pools: ${this.queues.names.join(', ')}`);
  }

  get pools(): string[] {
    return this.queues.names;
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
    return this.queues.configured();
  }

  hasPool(pool: string): boolean {
    return this.queues.names.includes(pool);
  }

  private queue(pool: string): Queue {
    return this.queues.get(pool);
  }

  /**
   * Tries to take idempotency keys with the request's pending claims (`SET NX GET`, for
   * PENDING_CLAIM_MS); returns what each key held before (null: taken now). See `@fleet/contracts` idempotency.
   */
  async tryClaims(client: string, claims: readonly Claim[]): Promise<Array<string | null>> {
    if (claims.length === 0) return [];
    const p = this.redis.pipeline();
    for (const c of claims) p.set(this.keys.idempotency(client, c.key), c.pending, 'PX', PENDING_CLAIM_MS, 'NX', 'GET');
    const replies = (await p.exec()) ?? [];
    const failed = replies.find(([err]) => err);
    if (failed) {
      // Refused part way (out of memory): the claims taken are given back, so the request leaves no key behind.
      const taken = claims.filter((_, i) => !replies[i]?.[0] && replies[i]?.[1] === null);
      await this.releaseClaims(client, taken).catch(() => undefined);
      throw failed[0] as Error;
    }
    return replies.map(([, value]) => (value as string | null) ?? null);
  }

  /** Gives back pending claims this request took (a committed claim, or another request's, stays). */
  async releaseClaims(client: string, claims: readonly Claim[]): Promise<void> {
    for (const c of claims) await this.redis.releaseClaim(this.keys.idempotency(client, c.key), c.pending);
  }

  /** Each client's cap of tasks waiting in one pool (MAX_QUEUED_PER_CLIENT). */
  get queuedCap(): number {
    return this.settings.security.maxQueuedPerClient;
  }

  /**
   * Whether `n` more tasks of the client could fit under its caps, in whatever pools they go to: false only
   * when they certainly cannot (the room left in all pools together is less than `n`). A cheap check before a
   * large batch is validated and routed; the reservation at queueing time is what holds.
   */
  async mayFit(client: string, n: number): Promise<{ fits: boolean; room: number }> {
    const rooms = await Promise.all(this.pools.map((pool) => this.cap.room(pool, client, n)));
    const room = rooms.reduce((sum, r) => sum + Math.max(0, r), 0);
    return { fits: room >= n, room };
  }

  /**
   * Queues tasks of any pools and commits the request's pending idempotency claims to them, all or nothing,
   * after counting them against each client's cap (a 429 when it would pass). With every pool in the fleet's
   * slot (the default) that is one MULTI. Job ids are chosen before the transaction, so running it twice adds
   * nothing twice. With pools spread over slots, see `SpreadBatches`.
   */
  async enqueue(tasks: readonly NewTask[], claims: readonly Claim[], client: string, extra?: TransactionExtra): Promise<void> {
    if (tasks.length === 0 && claims.length === 0 && !extra) return;
    await this.tx.ready();
    const byPool = groupBy(tasks, (t) => t.pool);
    const reserved: Array<[string, string[]]> = [];
    try {
      for (const [pool, group] of byPool) {
        const ids = group.map((t) => t.id);
        await this.cap.reserve(pool, client, ids);
        reserved.push([pool, ids]);
      }
      const entries = tasks.map((t) => this.entryOf(t, client));
      const spread = this.keys.spread === 'pools' && (claims.length > 0 || extra !== undefined || byPool.size > 1);
      if (spread) await this.batches.queue(randomUUID(), entries, claims, client, extra);
      else await this.transact(entries, claims, client, extra);
    } catch (err) {
      // A recorded batch will be queued whole: its tasks keep their places under the cap.
      if (!(err as { recorded?: boolean }).recorded) {
        await Promise.all(reserved.map(([pool, ids]) => this.cap.release(pool, client, ids))).catch(() => undefined);
      }
      throw err;
    }
    for (const t of tasks) this.queuedTotal.inc({ pool: t.pool, type: t.task.type });
  }

  private entryOf({ id, pool, task, run }: NewTask, client: string): BatchEntry {
    return { pool, id, name: task.type, data: compactQueuedTask(task, client, run), opts: taskJobOptions(id, task, pool) };
  }

  private async transact(
    entries: readonly BatchEntry[],
    claims: readonly Claim[],
    client: string,
    extra: TransactionExtra | undefined,
  ): Promise<void> {
    const multi = this.tx.queueing();
    this.tx.commit(multi, client, claims);
    extra?.(multi);
    const queued = entries.map((e) => this.tx.add(multi, e));
    await this.tx.exec(multi, queued, claims);
  }

  /** Step 1 of a spread batch alone (`SpreadBatches.record`), so a test can stop after it as a crash would. */
  async recordPending(batchId: string, tasks: readonly NewTask[], claims: readonly Claim[], client: string, extra?: TransactionExtra): Promise<void> {
    await this.tx.ready();
    await this.batches.record(
      batchId,
      tasks.map((t) => this.entryOf(t, client)),
      claims,
      client,
      extra,
    );
  }

  /** Queues what pending spread batches still owe (`SpreadBatches.settle`); 0 when pools are not spread. */
  settlePending(minAgeMs: number, taskId?: string): Promise<number> {
    return this.keys.spread === 'pools' ? this.batches.settle(minAgeMs, taskId) : Promise.resolve(0);
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
    await this.redis
      .multi()
      .set(key, JSON.stringify(record), 'EX', this.settings.retention.failedAgeS)
      .zadd(this.keys.cancelledIndex, record.cancelled_at, key)
      .exec();
    try {
      await job.remove();
      await this.cap.release(record.pool, record.submitted_by, [record.id]);
      return true;
    } catch (err) {
      await this.redis.multi().del(key).zrem(this.keys.cancelledIndex, key).exec();
      if (/locked/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  /**
   * Bounds by count what requests leave besides tasks (their age bound is their TTL): idempotency claims
   * (at most as many as finished tasks are kept, completed and failed: a claim outliving its task names
   * nothing), and cancelled tasks' records (as many as failed tasks). The oldest go first.
   */
  async trimRecords(): Promise<void> {
    const r = this.settings.retention;
    await unlinkAll(this.redis, await trimIndex(this.redis, this.keys.claims, r.completedCount + r.failedCount));
    await unlinkAll(this.redis, await trimIndex(this.redis, this.keys.cancelledIndex, r.failedCount));
  }

  async counts(): Promise<Array<{ pool: string; counts: QueueCounts }>> {
    return Promise.all(
      this.queues.configured().map(async (q) => {
        const pool = q.name;
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
    const [counts, due] = await Promise.all([
      q.getJobCounts('waiting', 'prioritized', 'delayed', 'active'),
      this.redis.zcount(q.keys.delayed, 0, delayedScoreDueBy(Date.now())),
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
    await bestEffort(this.queues.close(), 'closing the queues');
    await bestEffort(this.redis.quit(), 'QUIT');
    await bestEffort(this.inserts.quit(), 'QUIT (queueing connection)');
    this.redis.disconnect();
    this.inserts.disconnect();
  }
}
