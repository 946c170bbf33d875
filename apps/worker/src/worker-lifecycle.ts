import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { WorkerSettings } from '@fleet/config';
import { waitUntilReady } from '@fleet/redis';
import { Heartbeat } from './heartbeat.js';
import { TaskConsumer } from './task-consumer.js';
import { TimingsWriter } from './timings-writer.js';
import { WorkerRedis } from './worker-redis.js';
import { WORKER_SETTINGS } from './worker-settings.js';

/** Start-up and shutdown in one place, because their order matters. */
@Injectable()
export class WorkerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('worker');

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly redis: WorkerRedis,
    private readonly consumer: TaskConsumer,
    private readonly heartbeat: Heartbeat,
    private readonly timings: TimingsWriter,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await waitUntilReady(this.redis.connection, this.settings.redisUrl, 15_000);
    this.consumer.start();
    await this.heartbeat.start();
  }

  /** Drain: say so, take nothing new, finish held tasks, write their timings, leave the registry, disconnect. */
  async onApplicationShutdown(): Promise<void> {
    this.logger.log(`draining ${this.consumer.current.size} held task(s)`);
    await this.heartbeat.markDraining();
    await this.consumer.drain();
    await this.timings.flush();
    await this.heartbeat.stop();
    await this.redis.quit();
    this.logger.log(`stopped after ${this.consumer.completed} completed and ${this.consumer.failed} failed attempt(s)`);
  }
}
