import { Controller, Get, HttpStatus, Query, ServiceUnavailableException } from '@nestjs/common';
import { ContractPipe, NO_QUERY } from '@fleet/app';
import { Access, READERS } from '@fleet/auth';
import type { WorkerRecord } from '@fleet/redis';
import { type QueueCounts, TaskQueueRepository } from './task-queue.repository.js';

@Controller()
export class FleetController {
  constructor(private readonly repo: TaskQueueRepository) {}

  /** Task counts per pool and state. */
  @Get('queues')
  @Access(READERS)
  async queues(@Query(new ContractPipe(NO_QUERY)) _q: object): Promise<{ pools: Array<{ pool: string; counts: QueueCounts }> }> {
    return { pools: await this.repo.counts() };
  }

  /** Workers whose heartbeat is current, with pool, capabilities and the tasks they hold. */
  @Get('workers')
  @Access(READERS)
  async workers(@Query(new ContractPipe(NO_QUERY)) _q: object): Promise<{ workers: WorkerRecord[] }> {
    return { workers: await this.repo.workers() };
  }

  @Get('health')
  @Access('public')
  async health(): Promise<{ status: 'ok'; redis: 'up' }> {
    try {
      await this.repo.ping();
      return { status: 'ok', redis: 'up' };
    } catch (err) {
      throw new ServiceUnavailableException({
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'Service Unavailable',
        message: `Redis is not reachable: ${(err as Error).message}`,
        errors: [{ field: 'redis', reason: (err as Error).message }],
      });
    }
  }
}
