import type { Redis } from 'ioredis';
import { FieldErrorsException } from '@fleet/app';
import { type FleetKeys, NOT_YET_PICKED_SETS } from '@fleet/redis';

/**
 * Lua shared by both scripts: forgets ids of the client's set that no longer wait (not prioritized, delayed or
 * waiting for dependencies), keeping those added in the last minute; returns the set's size after.
 */
const FORGET_STALE = `
local function forgetStale(key, now)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', now - 60000)) do
    if not redis.call('ZSCORE', KEYS[2], m) and not redis.call('ZSCORE', KEYS[3], m) and not redis.call('ZSCORE', KEYS[4], m) then
      redis.call('ZREM', key, m)
    end
  end
  return redis.call('ZCARD', key)
end
`;

/**
 * Adds task ids to a client's set of queued tasks in a pool unless that would pass the cap. When it would,
 * ids no longer waiting (not prioritized, delayed or waiting for dependencies) are forgotten first; ids added in
 * the last minute stay (their transaction may not have run yet). The set expires with failed-task retention.
 * KEYS: the client's set, the pool's prioritized, delayed and waiting-children sets.
 * ARGV: cap, now (ms), ttl (s), ids…  Returns {1, count} when added, {0, count} when refused.
 */
const RESERVE_QUEUED = `${FORGET_STALE}
local key, cap, now = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local n = #ARGV - 3
local count = redis.call('ZCARD', key)
if count + n > cap then
  count = forgetStale(key, now)
  if count + n > cap then return {0, count} end
end
for i = 4, #ARGV, 500 do
  local args = {}
  for j = i, math.min(i + 499, #ARGV) do
    table.insert(args, now)
    table.insert(args, ARGV[j])
  end
  redis.call('ZADD', key, unpack(args))
end
redis.call('EXPIRE', key, ARGV[3])
return {1, count + n}
`;

/**
 * Room left under the cap for `n` more tasks: ids no longer waiting are forgotten first when the set would not
 * have room (as RESERVE_QUEUED does). KEYS as RESERVE_QUEUED; ARGV: cap, now (ms), n. Returns cap - count.
 */
const QUEUED_ROOM = `${FORGET_STALE}
local key, cap, now, n = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local count = redis.call('ZCARD', key)
if count + n > cap then
  count = forgetStale(key, now)
end
return cap - count
`;

type CapRedis = Redis & {
  reserveQueued(...args: Array<string | number>): Promise<[number, number]>;
  queuedRoom(...args: Array<string | number>): Promise<number>;
};

/** Each client's cap of tasks waiting in a pool (MAX_QUEUED_PER_CLIENT), kept by a Lua script per reservation. */
export class QueuedCap {
  private readonly redis: CapRedis;

  constructor(
    redis: Redis,
    private readonly keys: FleetKeys,
    private readonly cap: number,
    private readonly ttlS: number,
  ) {
    this.redis = redis as CapRedis;
    if (!('reserveQueued' in redis)) this.redis.defineCommand('reserveQueued', { numberOfKeys: 4, lua: RESERVE_QUEUED });
    if (!('queuedRoom' in redis)) this.redis.defineCommand('queuedRoom', { numberOfKeys: 4, lua: QUEUED_ROOM });
  }

  /** How many more tasks the client may queue in the pool now (negative: over; for a pre-check, not a reservation). */
  room(pool: string, client: string, n: number): Promise<number> {
    return this.redis.queuedRoom(
      this.keys.queuedBy(pool, client),
      ...NOT_YET_PICKED_SETS.map((set) => this.keys.queueKey(pool, set)),
      this.cap,
      Date.now(),
      n,
    );
  }

  /**
   * Counts `ids` against the client's cap in the pool (what the script checks and what it adds cannot be
   * interleaved with another coordinator). Throws a 429 when the cap would be exceeded.
   */
  async reserve(pool: string, client: string, ids: readonly string[]): Promise<void> {
    const [ok, count] = await this.redis.reserveQueued(
      this.keys.queuedBy(pool, client),
      ...NOT_YET_PICKED_SETS.map((set) => this.keys.queueKey(pool, set)),
      this.cap,
      Date.now(),
      this.ttlS,
      ...ids,
    );
    if (ok !== 1) throw tooManyQueued(pool, client, count, this.cap);
  }

  async release(pool: string, client: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.zrem(this.keys.queuedBy(pool, client), ...ids);
  }
}

function tooManyQueued(pool: string, client: string, count: number, cap: number): FieldErrorsException {
  const e = new FieldErrorsException(429, [
    {
      field: 'tasks',
      reason: `client ${client} has ${count} task(s) queued in pool ${pool}; at most ${cap} may wait (MAX_QUEUED_PER_CLIENT): retry when some have run`,
    },
  ]);
  return Object.assign(e, { retryAfterS: 5 });
}
