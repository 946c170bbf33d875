import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { bestEffort, type FleetKeys } from '@fleet/redis';
import { LIMITS_KEYS, LIMITS_REDIS } from './tokens.js';

const HIT = `
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {hits, redis.call('PTTL', KEYS[1])}
`;

const FLEET_RATE_HIT = 'fleetRateHit';
type RateHit = Record<typeof FLEET_RATE_HIT, (key: string, windowMs: number) => Promise<[number, number]>>;

export interface RateLimitResult {
  allowed: boolean;
  remaining: number;
  /** Seconds until the window resets (what Retry-After says when refused). */
  resetS: number;
}

const WINDOW_MS = 60_000;

/**
 * Requests per client per minute, counted in Redis so the limit holds across several instances of an app:
 * one counter per client and minute (INCR, expiring with the window), bumped and read in one script.
 */
@Injectable()
export class RateLimiter implements OnApplicationShutdown {
  constructor(
    @Inject(LIMITS_REDIS) private readonly redis: Redis,
    @Inject(LIMITS_KEYS) private readonly keys: FleetKeys,
  ) {
    // EVALSHA (ioredis falls back to EVAL once per connection when Redis lacks it): the script is not sent each request.
    if (!(FLEET_RATE_HIT in redis)) redis.defineCommand(FLEET_RATE_HIT, { numberOfKeys: 1, lua: HIT });
  }

  async hit(client: string, limit: number): Promise<RateLimitResult> {
    const [hits, pttl] = await (this.redis as Redis & RateHit)[FLEET_RATE_HIT](this.keys.rateLimit(client), WINDOW_MS);
    return { allowed: hits <= limit, remaining: Math.max(0, limit - hits), resetS: Math.max(1, Math.ceil(pttl / 1000)) };
  }

  async onApplicationShutdown(): Promise<void> {
    await bestEffort(this.redis.quit(), 'QUIT');
    this.redis.disconnect();
  }
}
