/**
 * The analyzer's Lua scripts. Each runs atomically in Redis, so what it checks and what it writes cannot be
 * torn apart by a crash or interleaved with another analyzer.
 */

/**
 * Commits one batch of timing entries. An entry's effects are applied only if this very call acknowledges it:
 * it is still pending for this analyzer (one XPENDING over the batch's range; should that range hold more of
 * its entries than the limit, each entry's own XACK answering 1 decides). An entry another analyzer claimed and
 * committed meanwhile, or one committed before a crash and read again, changes nothing. An event whose (task,
 * attempt) was counted before (a worker repeated a write it could not confirm) counts as a duplicate only.
 *
 * A test file's attempt that ran its course (passed or failed, not timed out or errored) moves the file's
 * expected duration (`<pool>|<file>` in the durations hash): an exponentially weighted mean, weight 0.3.
 *
 * A sample of a series not kept yet is refused (and counted as `series_refused`) once `max series` are kept.
 * Counters are added up and samples gathered per series over the batch, then written with one HINCRBY per
 * counter and one RPUSH per series (in chunks), so Redis's work grows with the events, not with the calls.
 *
 * Each series' count of appended samples goes up in the versions hash, so the analysis reads only what moved.
 *
 * KEYS: stream, counters hash, series index set, durations hash, series versions hash.
 * ARGV: group, series key base, seen-set key base, seen TTL (s), history window, max series, then the batch as
 * JSON: one array per entry, [id, seen bucket ('' for none), seen member, duration key ('' for none),
 * duration (ms), [counter name, increment, …], [series, "at value …", …]], then this analyzer's consumer name.
 * Returns the events counter after the commit, then per entry what became of it: 1 applied, 2 a duplicate,
 * 0 not this commit's (acknowledged before, by this or another analyzer).
 */
export const COMMIT_BATCH = `
local stream, counters, index, durations, versions = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, seriesBase, seenBase, seenTtl, window = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local maxSeries = tonumber(ARGV[6])
local batch = cjson.decode(ARGV[7])
local consumer = ARGV[8]
local rows = {}
local order = {}
local incs = {}
local incOrder = {}
local kept = redis.call('SCARD', index)
local out = {0}
local function inc(name, by)
  if incs[name] == nil then
    incs[name] = 0
    incOrder[#incOrder + 1] = name
  end
  incs[name] = incs[name] + by
end
local function chunks(list, fn)
  for from = 1, #list, 500 do fn(unpack(list, from, math.min(from + 499, #list))) end
end
local function parseId(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function idLess(a, b)
  local am, as = parseId(a)
  local bm, bs = parseId(b)
  if am ~= bm then return am < bm end
  return as < bs
end
-- Which entries are still pending for this analyzer: one XPENDING over the batch's range rather than an XACK
-- per entry. Should the range hold more of this consumer's entries than the limit, each is asked by its XACK.
local pending = nil
if consumer and #batch > 0 then
  local low, high = batch[1][1], batch[1][1]
  for _, e in ipairs(batch) do
    if idLess(e[1], low) then low = e[1] end
    if idLess(high, e[1]) then high = e[1] end
  end
  local limit = 2 * #batch + 10
  local reply = redis.call('XPENDING', stream, group, low, high, limit, consumer)
  if #reply < limit then
    pending = {}
    for _, p in ipairs(reply) do pending[p[1]] = true end
  end
end
local acked = {}
local function take(id)
  if pending == nil then return redis.call('XACK', stream, group, id) == 1 end
  if pending[id] then
    acked[#acked + 1] = id
    return true
  end
  return false
end
-- Which (task, attempt) identities were counted before: one SMISMEMBER per seen set and batch.
local counted = {}
local asks = {}
for _, e in ipairs(batch) do
  if e[2] ~= '' and (pending == nil or pending[e[1]]) then
    local seen = seenBase .. e[2]
    if asks[seen] == nil then asks[seen] = {} end
    local list = asks[seen]
    list[#list + 1] = e[3]
  end
end
for seen, members in pairs(asks) do
  local known = {}
  counted[seen] = known
  chunks(members, function(...)
    local names = {...}
    local flags = redis.call('SMISMEMBER', seen, ...)
    for i, flag in ipairs(flags) do
      if flag == 1 then known[names[i]] = true end
    end
  end)
end
local added = {}
local addOrder = {}
for _, e in ipairs(batch) do
  local id, bucket, member, dkey, dvalue, cs, ss = e[1], e[2], e[3], e[4], e[5], e[6], e[7]
  local status = 0
  if take(id) then
    local apply = true
    if bucket ~= '' then
      local seen = seenBase .. bucket
      -- (Every entry this commit takes with a bucket was asked about above.)
      if counted[seen][member] then
        apply = false
        inc('duplicates', 1)
      else
        counted[seen][member] = true
        if added[seen] == nil then
          added[seen] = {}
          addOrder[#addOrder + 1] = seen
        end
        local list = added[seen]
        list[#list + 1] = member
      end
    end
    if apply and dkey ~= '' then
      local old = tonumber(redis.call('HGET', durations, dkey))
      redis.call('HSET', durations, dkey, math.floor(old and (0.7 * old + 0.3 * dvalue) or dvalue))
    end
    status = apply and 1 or 2
    if apply then
      for k = 1, #cs, 2 do inc(cs[k], cs[k + 1]) end
      for k = 1, #ss, 2 do
        local series = ss[k]
        if rows[series] == nil then
          if redis.call('SISMEMBER', index, series) == 0 then
            if kept >= maxSeries then
              series = nil
              inc('series_refused', 1)
            else
              kept = kept + 1
            end
          end
          if series then
            rows[series] = {}
            order[#order + 1] = series
          end
        end
        if series then
          local list = rows[series]
          list[#list + 1] = ss[k + 1]
        end
      end
    end
  end
  out[#out + 1] = status
end
chunks(acked, function(...) redis.call('XACK', stream, group, ...) end)
for _, seen in ipairs(addOrder) do
  chunks(added[seen], function(...) redis.call('SADD', seen, ...) end)
  redis.call('EXPIRE', seen, seenTtl)
end
for _, name in ipairs(incOrder) do redis.call('HINCRBY', counters, name, incs[name]) end
for _, series in ipairs(order) do
  local list = rows[series]
  for from = 1, #list, 1000 do
    redis.call('RPUSH', seriesBase .. series, unpack(list, from, math.min(from + 999, #list)))
  end
  redis.call('LTRIM', seriesBase .. series, -window, -1)
  redis.call('SADD', index, series)
  redis.call('HINCRBY', versions, series, #list)
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

/**
 * Appends derived samples (rates) under the same cap as ingest: a sample of a series not kept yet is refused
 * and counted (`series_refused`) once `max series` are kept.
 * KEYS: the series index, the counters hash, the series versions hash. ARGV: max series, history window, then per sample its list key,
 * series name and row.
 */
export const APPEND_SAMPLES = `
local maxSeries, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local kept = redis.call('SCARD', KEYS[1])
for i = 3, #ARGV, 3 do
  local list, series, row = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local known = redis.call('SISMEMBER', KEYS[1], series) == 1
  if known or kept < maxSeries then
    if not known then
      redis.call('SADD', KEYS[1], series)
      kept = kept + 1
    end
    redis.call('RPUSH', list, row)
    redis.call('LTRIM', list, -window, -1)
    redis.call('HINCRBY', KEYS[3], series, 1)
  else
    redis.call('HINCRBY', KEYS[2], 'series_refused', 1)
  end
end
return kept
`;
