import { hostname } from 'node:os';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { TaskConsumer } from './task-consumer.js';
import { bestEffort } from '@fleet/redis';
import { WorkerRedis } from './worker-redis.js';

/**
 * Keeps this worker's registry entry alive: every `heartbeatMs` it rewrites the entry (pool, pid, current
 * tasks, counters) with a time to live of five beats, so a dead worker drops out of the list by itself.
 */
@Injectable()
export class Heartbeat {
  private readonly logger = new Logger(Heartbeat.name);
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private status: 'running' | 'draining' = 'running';
  private beating: Promise<void> = Promise.resolve();

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly redis: WorkerRedis,
    private readonly consumer: TaskConsumer,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.settings.heartbeatMs);
  }

  private beat(): Promise<void> {
    const s = this.settings;
    this.beating = this.redis.registry
      .beat(
        {
          id: s.workerId,
          pool: s.pool,
          host: hostname(),
          pid: process.pid,
          capabilities: s.template.capabilities,
          concurrency: s.concurrency,
          status: this.status,
          started_at: this.startedAt,
          last_heartbeat: Date.now(),
          current_tasks: [...this.consumer.current],
          completed: this.consumer.completed,
          failed: this.consumer.failed,
        },
        Math.max(5 * s.heartbeatMs, 3000),
      )
      .catch((err: Error) => this.logger.warn(`heartbeat failed: ${err.message}`));
    return this.beating;
  }

  /** Announces the drain at once, so supervisors and `GET /workers` see it (best effort: Redis may be away). */
  async markDraining(): Promise<void> {
    this.status = 'draining';
    await bestEffort(this.beat(), 'announcing the drain', this.logger);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await bestEffort(this.beating, 'the last heartbeat');
    await bestEffort(this.redis.registry.remove(this.settings.workerId), 'leaving the registry', this.logger);
  }
}
