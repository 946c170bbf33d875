import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { QueuedTask, TaskResult } from '@fleet/contracts';
import { bestEffort, createRedis, FleetKeys } from '@fleet/redis';
import { type CoordinatorSettings, COORDINATOR_SETTINGS } from './coordinator-settings.js';

/** A build's queue unused this long (no lease, renewal or reconciler pass) has its consumer closed. */
const IDLE_CLOSE_FACTOR = 4;

/**
 * CI nodes reach their build's queue only through the coordinator (no Redis address on a CI node): for each
 * build's queue in use, the coordinator holds a BullMQ Worker without a processor, and takes jobs for nodes
 * with `getNextJob` (BullMQ's manual processing), each under a token the node renews while it runs the file.
 * The Worker's stalled check gives a file whose node stopped renewing (SIGKILL, a CI timeout) back to the
 * queue, so another node runs it. The reconciler keeps a build's consumer open while its run is active.
 */
@Injectable()
export class CiLeases implements OnApplicationShutdown {
  private readonly logger = new Logger(CiLeases.name);
  private readonly consumers = new Map<string, { worker: Worker<QueuedTask, TaskResult>; queue: Queue; usedAt: number }>();
  private readonly redis: Redis;
  private readonly keys: FleetKeys;
  private closing = false;

  constructor(@Inject(COORDINATOR_SETTINGS) private readonly settings: CoordinatorSettings) {
    this.keys = new FleetKeys(settings.prefix, settings.spread);
    this.redis = createRedis(settings.redisUrl, 'consumer', 'coordinator-ci');
  }

  get leaseMs(): number {
    return this.settings.ciLeaseMs;
  }

  /** The build queue's consumer, opened on first use; its stalled check runs while it is open. */
  consumer(queue: string): Worker<QueuedTask, TaskResult> {
    return this.held(queue).worker;
  }

  /** How many of a build's files are not finished (waiting, held by a node, or waiting for a retry). */
  async unfinished(queue: string): Promise<number> {
    const c = await this.held(queue).queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'waiting-children');
    return Object.values(c).reduce((a, b) => a + b, 0);
  }

  private held(queue: string): { worker: Worker<QueuedTask, TaskResult>; queue: Queue; usedAt: number } {
    if (this.closing) throw new Error('the coordinator is shutting down');
    const now = Date.now();
    const held = this.consumers.get(queue);
    if (held) {
      held.usedAt = now;
      return held;
    }
    const worker = new Worker<QueuedTask, TaskResult>(queue, null, {
      connection: this.redis,
      prefix: this.keys.queuePrefix(queue),
      autorun: false,
      lockDuration: this.leaseMs,
      // A file whose node stopped renewing goes back within a lease and a half; after two such stalls it fails.
      stalledInterval: Math.max(500, Math.round(this.leaseMs / 2)),
      maxStalledCount: 2,
    });
    worker.on('error', (err) => this.logger.warn(`build queue ${queue}: ${err.message}`));
    void worker.startStalledCheckTimer().catch((err: Error) => this.logger.warn(`build queue ${queue}: stalled check: ${err.message}`));
    const entry = { worker, queue: new Queue(queue, { connection: this.redis, prefix: this.keys.queuePrefix(queue) }), usedAt: now };
    this.consumers.set(queue, entry);
    this.sweep(now);
    return entry;
  }

  /** A job of a build's queue, or undefined when it is gone (finished and removed). */
  async job(queue: string, id: string): Promise<Job<QueuedTask, TaskResult> | undefined> {
    return (await Job.fromId<QueuedTask, TaskResult>(this.consumer(queue), id)) ?? undefined;
  }

  /** Closes a build's consumer (its run ended). */
  async close(queue: string): Promise<void> {
    const held = this.consumers.get(queue);
    this.consumers.delete(queue);
    if (held) await bestEffort(Promise.all([held.worker.close(true), held.queue.close()]), `closing ${queue}`);
  }

  /** Removes a finished build's queue and everything in it (its run's record keeps every attempt). */
  async obliterate(queue: string): Promise<void> {
    await this.close(queue);
    const q = new Queue(queue, { connection: this.redis, prefix: this.keys.queuePrefix(queue) });
    try {
      await q.obliterate({ force: true });
    } finally {
      await q.close();
    }
  }

  /** Closes consumers nobody used for a while (a reconciler pass keeps an active build's open). */
  private sweep(now: number): void {
    for (const [queue, held] of this.consumers) {
      if (now - held.usedAt > IDLE_CLOSE_FACTOR * this.leaseMs) void this.close(queue);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.consumers.keys()].map((q) => this.close(q)));
    await bestEffort(this.redis.quit(), 'closing the CI connection');
  }
}
