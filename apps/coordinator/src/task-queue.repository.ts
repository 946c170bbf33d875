import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CoordinatorSettings } from '@fleet/config';
import type { Task, TaskResult } from '@fleet/contracts';
import { createRedis, FleetKeys, pingWithin, taskJobOptions, waitUntilReady, type WorkerRecord, WorkerRegistry } from '@fleet/redis';
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

  /** Queues tasks with one `addBulk` per pool (atomic within a pool). */
  async add(tasks: readonly NewTask[]): Promise<void> {
    const byPool = new Map<string, NewTask[]>();
    for (const t of tasks) {
      const list = byPool.get(t.pool) ?? [];
      list.push(t);
      byPool.set(t.pool, list);
    }
    for (const [pool, list] of byPool) {
      await this.queue(pool).addBulk(
        list.map(({ id, task }) => ({ name: task.type, data: task, opts: taskJobOptions(id, task, this.settings.retention) })),
      );
    }
  }

  /**
   * Claims idempotency keys for new task ids in one round trip (`SET NX GET`). For each key, the id
   * that already holds it, or null when this call's id won it.
   */
  async claimIdempotencyKeys(claims: ReadonlyArray<{ key: string; id: string }>): Promise<Array<string | null>> {
    if (claims.length === 0) return [];
    const ttl = Math.max(this.settings.retention.completedAgeS, this.settings.retention.failedAgeS);
    const pipeline = this.redis.pipeline();
    for (const c of claims) pipeline.set(this.keys.idempotency(c.key), c.id, 'EX', ttl, 'NX', 'GET');
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      return (value as string | null) ?? null;
    });
  }

  async releaseIdempotencyKeys(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.redis.del(...keys.map((k) => this.keys.idempotency(k)));
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
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
