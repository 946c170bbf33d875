import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CoordinatorSettings } from '@fleet/config';
import type { Task, TaskResult } from '@fleet/contracts';
import { bestEffort, createRedis, FleetKeys, pingWithin, taskJobOptions, waitUntilReady, type WorkerRecord, WorkerRegistry } from '@fleet/redis';
import { COORDINATOR_SETTINGS } from './coordinator-settings.js';

export interface NewTask {
  id: string;
  pool: string;
  task: Task;
}

/** What the coordinator remembers of a task it cancelled (BullMQ forgets a removed job). */
export interface CancelledRecord {
  id: string;
  pool: string;
  name: string;
  type: Task['type'];
  priority: number;
  labels: Record<string, string>;
  queued_at: number;
  cancelled_at: number;
}

export type QueueCounts = Record<'waiting' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed', number>;

/** The coordinator's only door to Redis: its queues (one per pool), idempotency keys, cancellations, the worker list. */
@Injectable()
export class TaskQueueRepository implements OnApplicationShutdown {
  private readonly logger = new Logger(TaskQueueRepository.name);
  private readonly redis: Redis;
  private readonly keys: FleetKeys;
  private readonly queues = new Map<string, Queue>();
  private readonly registry: WorkerRegistry;
  private scriptsLoaded = false;

  constructor(@Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings) {
    this.keys = new FleetKeys(settings.prefix);
    this.redis = createRedis(settings.redisUrl, 'producer', 'coordinator');
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

  hasPool(pool: string): boolean {
    return this.queues.has(pool);
  }

  private queue(pool: string): Queue {
    const q = this.queues.get(pool);
    if (!q) throw new Error(`no queue for pool ${pool}`);
    return q;
  }

  /** The task ids that hold these idempotency keys already (null where none does). */
  async idempotencyHolders(keys: readonly string[]): Promise<Array<string | null>> {
    if (keys.length === 0) return [];
    return this.redis.mget(...keys.map((k) => this.keys.idempotency(k)));
  }

  /**
   * Queues tasks of any pools and claims idempotency keys (`SET NX GET`) in one MULTI: Redis runs all of it
   * or none of it (a connection lost before EXEC discards the transaction; AOF replays it whole or not at
   * all). Job ids are chosen before the transaction, so running it twice adds nothing twice. Returns, per
   * claim, the id that held the key already (another request won it meanwhile), or null when this one did.
   */
  async enqueue(tasks: readonly NewTask[], claims: ReadonlyArray<{ key: string; id: string }>): Promise<Array<string | null>> {
    if (tasks.length === 0 && claims.length === 0) return [];
    await this.ensureScriptsLoaded();
    const ttl = Math.max(this.settings.retention.completedAgeS, this.settings.retention.failedAgeS);
    // Every queue shares this connection: BullMQ's view of it makes a MULTI its scripts can join.
    const multi = (await (this.queues.values().next().value as Queue).backend.client).multi();
    const raw = multi as unknown as ReturnType<Redis['multi']>;
    for (const c of claims) raw.set(this.keys.idempotency(c.key), c.id, 'EX', ttl, 'NX', 'GET');
    const queued: Array<Promise<string>> = [];
    for (const { id, pool, task } of tasks) {
      const queue = this.queue(pool);
      const entry = new Job(queue, task.type, task, taskJobOptions(id, task, this.settings.retention), id).toFlowEntry();
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
  async getJob(pool: string, id: string): Promise<{ job: Job<Task, TaskResult>; state: string } | undefined> {
    const queue = this.queue(pool);
    const state = await queue.getJobState(id);
    if (state === 'unknown') return undefined;
    const job = await Job.fromId<Task, TaskResult>(queue, id);
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
  async cancel(job: Job<Task>, record: CancelledRecord): Promise<boolean> {
    const key = this.keys.cancelled(record.id);
    await this.redis.set(key, JSON.stringify(record), 'EX', this.settings.retention.failedAgeS);
    try {
      await job.remove();
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
