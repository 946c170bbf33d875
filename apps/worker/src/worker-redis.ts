import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { WorkerSettings } from '@fleet/config';
import { createRedis, FleetKeys, WorkerRegistry } from '@fleet/redis';
import { WORKER_SETTINGS } from './worker-settings.js';

/** The worker's Redis connection (shared with its BullMQ Worker) and what it writes besides jobs. */
@Injectable()
export class WorkerRedis {
  readonly connection: Redis;
  readonly keys: FleetKeys;
  readonly registry: WorkerRegistry;

  constructor(@Inject(WORKER_SETTINGS) settings: WorkerSettings) {
    this.keys = new FleetKeys(settings.prefix);
    this.connection = createRedis(settings.redisUrl, 'consumer', `worker:${settings.workerId}`);
    this.registry = new WorkerRegistry(this.connection, this.keys);
  }

  async quit(): Promise<void> {
    await this.connection.quit().catch(() => this.connection.disconnect());
  }
}
