/**
 * The analyzer's Lua scripts. Each runs atomically in Redis, so what it checks and what it writes cannot be
 * torn apart by a crash or interleaved with another analyzer.
 */

/**
 * Commits one batch of timing entries. An entry's effects are applied only if this very call acknowledged
 * it (XACK answered 1): an entry another analyzer claimed and committed meanwhile, or one committed before a
 * crash and read again, changes nothing. An event whose (task, attempt) was counted before (a worker
 * repeated a write it could not confirm) counts as a duplicate only.
 *
 * A test file's attempt that ran its course (passed or failed, not timed out or errored) moves the file's
 * expected duration (`<pool>|<file>` in the durations hash): an exponentially weighted mean, weight 0.3.
 *
 * KEYS: stream, counters hash, series index set, durations hash.
 * A sample of a series not kept yet is refused (and counted as `series_refused`) once `max series` are kept.
 *
 * ARGV: group, series key base, seen-set key base, seen TTL (s), history window, max series, entry count, then per entry:
 *   id, seen bucket ('' for none), seen member, duration key ('' for none), duration (ms), counter count,
 *   (name, increment)…, sample count, (series, "at value")…
 * Returns the events counter after the commit, then per entry what became of it: 1 applied, 2 a duplicate,
 * 0 not this commit's (acknowledged before, by this or another analyzer).
 */
export const COMMIT_BATCH = `
local stream, counters, index, durations = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, seriesBase, seenBase, seenTtl, window = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local maxSeries = tonumber(ARGV[6])
local n = tonumber(ARGV[7])
local i = 8
local touched = {}
local fresh = {}
local kept = redis.call('SCARD', index)
local out = {0}
for _ = 1, n do
  local id, bucket, member, dkey, dvalue = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local nc = tonumber(ARGV[i + 5])
  local c0 = i + 6
  local ns = tonumber(ARGV[c0 + 2 * nc])
  local s0 = c0 + 2 * nc + 1
  i = s0 + 2 * ns
  local status = 0
  if redis.call('XACK', stream, group, id) == 1 then
    local apply = true
    if bucket ~= '' then
      local seen = seenBase .. bucket
      if redis.call('SADD', seen, member) == 0 then
        apply = false
        redis.call('HINCRBY', counters, 'duplicates', 1)
      elseif not fresh[seen] then
        fresh[seen] = true
        redis.call('EXPIRE', seen, seenTtl)
      end
    end
    if apply and dkey ~= '' then
      local old = tonumber(redis.call('HGET', durations, dkey))
      local v = tonumber(dvalue)
      redis.call('HSET', durations, dkey, math.floor(old and (0.7 * old + 0.3 * v) or v))
    end
    status = apply and 1 or 2
    if apply then
      for k = 0, nc - 1 do
        redis.call('HINCRBY', counters, ARGV[c0 + 2 * k], tonumber(ARGV[c0 + 2 * k + 1]))
      end
      for k = 0, ns - 1 do
        local series = ARGV[s0 + 2 * k]
        if not touched[series] and redis.call('SISMEMBER', index, series) == 0 then
          if kept >= maxSeries then
            series = nil
            redis.call('HINCRBY', counters, 'series_refused', 1)
          else
            kept = kept + 1
          end
        end
        if series then
          redis.call('RPUSH', seriesBase .. series, ARGV[s0 + 2 * k + 1])
          touched[series] = true
        end
      end
    end
  end
  out[#out + 1] = status
end
for series in pairs(touched) do
  redis.call('LTRIM', seriesBase .. series, -window, -1)
  redis.call('SADD', index, series)
end
out[1] = tonumber(redis.call('HGET', counters, 'events') or '0')
return out
`;

/**
 * Raises an alert for a regression: unless one is active for the series whose change point is as late or later
 * (another analyzer raised this one, or a later one). A later change point replaces the active alert: a new
 * regression on top of the last. KEYS: active hash, alerts stream. ARGV: series, alert JSON, maxlen, fields…
 */
export const RAISE_ALERT = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local was = cjson.decode(current).change_point
  local now = cjson.decode(ARGV[2]).change_point
  if not was or not now or tonumber(was.at) >= tonumber(now.at) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return 1
`;

/** Escalates the series' active alert from warning to critical, once. Same KEYS and ARGV as RAISE_ALERT. */
export const ESCALATE_ALERT = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or cjson.decode(current).severity ~= 'warning' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return 1
`;

/** Clears the series' active alert, once. Same KEYS and ARGV as RAISE_ALERT (the JSON is unused). */
export const CLEAR_ALERT = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return 1
`;
