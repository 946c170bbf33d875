import { Body, Controller, Delete, Get, Param, ParseIntPipe, Put, Query, DefaultValuePipe } from '@nestjs/common';
import { z } from 'zod';
import { ContractPipe } from '@fleet/app';
import { type ParseResult, toFieldErrors } from '@fleet/contracts';
import { type DecisionRecord, FleetStateRepository } from './fleet-state.repository.js';
import { type PoolView, PoolsService } from './pools.service.js';

const PinSchema = z.strictObject({
  workers: z.int({ error: 'must be a whole number of workers' }).min(0, { error: 'must not be negative' }),
});

export function parsePin(input: unknown): ParseResult<{ workers: number }> {
  const r = PinSchema.safeParse(input, { reportInput: true });
  return r.success ? { ok: true, value: r.data } : { ok: false, errors: toFieldErrors(r.error) };
}

@Controller()
export class PoolsController {
  constructor(
    private readonly pools: PoolsService,
    private readonly repo: FleetStateRepository,
  ) {}

  @Get('pools')
  list(): { pools: PoolView[] } {
    return { pools: this.pools.list() };
  }

  @Get('pools/:pool')
  get(@Param('pool') pool: string): PoolView {
    return this.pools.get(pool);
  }

  /** `{"workers": N}` pins the pool at N until the pin is removed. */
  @Put('pools/:pool')
  pin(@Param('pool') pool: string, @Body(new ContractPipe(parsePin)) body: { workers: number }): Promise<PoolView> {
    return this.pools.pin(pool, body.workers);
  }

  @Delete('pools/:pool/pin')
  unpin(@Param('pool') pool: string): Promise<PoolView> {
    return this.pools.unpin(pool);
  }

  @Get('decisions')
  async decisions(
    @Query('pool') pool: string | undefined,
    @Query('limit', new DefaultValuePipe(100), ParseIntPipe) limit: number,
  ): Promise<{ decisions: DecisionRecord[] }> {
    return { decisions: await this.repo.decisions(Math.min(Math.max(limit, 1), 1000), pool) };
  }

  @Get('health')
  async health(): Promise<{ status: 'ok' }> {
    await this.repo.ping();
    return { status: 'ok' };
  }
}
