import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import { bestEffort, createRedis, FleetKeys, WorkerRegistry } from '@fleet/redis';

/**
 * The worker's two Redis connections: one handed to its BullMQ Worker (no command timeout: BullMQ's own
 * blocking commands must not be cut short), one for what the fleet writes besides jobs (heartbeats, timing
 * events), whose commands time out so that a loop gets an error it can retry instead of hanging.
 */
@Injectable()
export class WorkerRedis {
  readonly queueConnection: Redis;
  readonly connection: Redis;
  readonly keys: FleetKeys;
  readonly registry: WorkerRegistry;

  constructor(@Inject(WORKER_SETTINGS) settings: WorkerSettings) {
    this.keys = new FleetKeys(settings.prefix, settings.spread);
    this.queueConnection = createRedis(settings.redisUrl, 'queue', `worker:${settings.workerId}`);
    this.connection = createRedis(settings.redisUrl, 'consumer', `worker-fleet:${settings.workerId}`);
    this.registry = new WorkerRegistry(this.connection, this.keys);
  }

  /** Closes both; never waits long on a Redis that is away. */
  async quit(): Promise<void> {
    await Promise.all(
      [this.queueConnection, this.connection].map(async (c) => {
        await bestEffort(c.quit(), 'QUIT');
        c.disconnect();
      }),
    );
  }
}
