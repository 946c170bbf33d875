import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { checkLayout, waitUntilReady } from '@fleet/redis';
import { Heartbeat } from './heartbeat.js';
import { TaskConsumer } from './task-consumer.js';
import { ProcessGuard } from './process-guard-client.js';
import { WorkerRedis } from './worker-redis.js';

/** Start-up and shutdown in one place, because their order matters. */
@Injectable()
export class WorkerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('worker');

  constructor(
    @Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings,
    private readonly redis: WorkerRedis,
    private readonly consumer: TaskConsumer,
    private readonly heartbeat: Heartbeat,
    private readonly guard: ProcessGuard,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await waitUntilReady(this.redis.connection, this.settings.redisUrl, 15_000);
    await checkLayout(this.redis.connection, this.redis.keys);
    this.guard.start();
    this.consumer.start();
    await this.heartbeat.start();
  }

  /**
   * Drain: say so, take nothing new, let held tasks finish and record them (within the shutdown grace once
   * they have finished), leave the registry, stop the guard, disconnect. Every Redis step is bounded, so a
   * shutdown during a Redis outage still ends.
   */
  async onApplicationShutdown(): Promise<void> {
    this.logger.log(`draining ${this.consumer.current.size} held task(s)`);
    await this.heartbeat.markDraining();
    if (!(await this.consumer.drain(this.settings.shutdownGraceMs))) {
      this.logger.warn(
        `the outcomes of ${this.consumer.current.size} task(s) could not be recorded within ${this.settings.shutdownGraceMs} ms (is Redis reachable?); ` +
          'they stay in Redis and will run again elsewhere',
      );
    }
    await this.heartbeat.stop();
    await this.guard.stop();
    await this.redis.quit();
    this.logger.log(
      `stopped after ${this.consumer.completed} completed, ${this.consumer.failed} failed and ${this.consumer.abandoned} abandoned attempt(s)`,
    );
  }
}
