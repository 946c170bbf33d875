import { Controller, Get, HttpStatus, Param, ServiceUnavailableException } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOperation } from '@nestjs/swagger';
import { ERROR_BODY_OPENAPI, NO_QUERY, notFound } from '@fleet/app';
import { ValidQuery } from '@fleet/ops';
import { Access, READERS } from '@fleet/auth';
import type { WorkerRecord } from '@fleet/redis';
import { type PoolScaling, type QueueCounts, TaskQueueRepository } from './task-queue.repository.js';

@Controller()
export class FleetController {
  constructor(private readonly repo: TaskQueueRepository) {}

  /** Task counts per pool and state. */
  @Get('queues')
  @Access(READERS)
  async queues(@ValidQuery(NO_QUERY) _q: object): Promise<{ pools: Array<{ pool: string; counts: QueueCounts }> }> {
    return { pools: await this.repo.counts() };
  }

  /** Workers whose heartbeat is current, with pool, capabilities and the tasks they hold. */
  @Get('workers')
  @Access(READERS)
  async workers(@ValidQuery(NO_QUERY) _q: object): Promise<{ workers: WorkerRecord[] }> {
    return { workers: await this.repo.workers() };
  }

  /** For autoscalers: KEDA's metrics-api trigger reads `backlog` (or `in_flight`) from here (see README: KEDA). */
  @Get('scaling/:pool')
  @Access(READERS)
  @ApiOperation({ summary: 'A pool’s backlog for autoscalers (KEDA metrics-api)' })
  @ApiNotFoundResponse({ description: 'no such pool', schema: ERROR_BODY_OPENAPI })
  async scaling(@Param('pool') pool: string, @ValidQuery(NO_QUERY) _q: object): Promise<PoolScaling> {
    if (!this.repo.hasPool(pool)) throw notFound('pool', `no pool "${pool}" (pools: ${this.repo.pools.join(', ')})`);
    return this.repo.scaling(pool);
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
