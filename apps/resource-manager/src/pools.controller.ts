import { Controller, Delete, Get, Param, Put } from '@nestjs/common';
import { z } from 'zod';
import { contractOf, limitParam, NO_QUERY, queryParser } from '@fleet/app';
import { ValidBody, ValidQuery } from '@fleet/ops';
import { Access, OPERATORS, READERS } from '@fleet/auth';
import { PoolNameSchema } from '@fleet/contracts';
import { type DecisionRecord, FleetStateRepository } from './fleet-state.repository.js';
import { type HostView, type PoolView, PoolsService } from './pools.service.js';

const PinSchema = z.strictObject({
  workers: z.int({ error: 'must be a whole number of workers' }).min(0, { error: 'must not be negative' }),
});

const PIN_CONTRACT = contractOf(PinSchema);

const parseDecisionsQuery = queryParser({ pool: PoolNameSchema.optional(), limit: limitParam(100) });

@Controller()
export class PoolsController {
  constructor(
    private readonly pools: PoolsService,
    private readonly repo: FleetStateRepository,
  ) {}

  @Get('pools')
  @Access(READERS)
  list(@ValidQuery(NO_QUERY) _q: object): { pools: PoolView[] } {
    return { pools: this.pools.list() };
  }

  @Get('pools/:pool')
  @Access(READERS)
  get(@Param('pool') pool: string, @ValidQuery(NO_QUERY) _q: object): PoolView {
    return this.pools.get(pool);
  }

  /** `{"workers": N}` pins the pool at N until the pin is removed. */
  @Put('pools/:pool')
  @Access(OPERATORS)
  pin(@Param('pool') pool: string, @ValidBody(PIN_CONTRACT) body: { workers: number }): Promise<PoolView> {
    return this.pools.pin(pool, body.workers);
  }

  @Delete('pools/:pool/pin')
  @Access(OPERATORS)
  unpin(@Param('pool') pool: string): Promise<PoolView> {
    return this.pools.unpin(pool);
  }

  /** Every live host of the fleet: its slots, pools and limits, workers and quotas. */
  @Get('hosts')
  @Access(READERS)
  hosts(@ValidQuery(NO_QUERY) _q: object): Promise<{ hosts: HostView[]; lease_holder: string | null }> {
    return this.pools.hosts();
  }

  @Get('decisions')
  @Access(READERS)
  async decisions(@ValidQuery(parseDecisionsQuery) q: { pool?: string; limit: number }): Promise<{ decisions: DecisionRecord[] }> {
    if (q.pool !== undefined) this.pools.get(q.pool); // 404 for a pool that does not exist
    return { decisions: await this.repo.decisions(q.limit, q.pool) };
  }

  @Get('health')
  @Access('public')
  async health(): Promise<{ status: 'ok' }> {
    await this.repo.ping();
    return { status: 'ok' };
  }
}
