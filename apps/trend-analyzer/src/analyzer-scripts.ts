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
 * JSON (CommitBatch): `{"s": [series name, …], "c": [counter name, …], "lo": lowest ID, "hi": highest ID,
 * "e": [...]}`, "e" holding the entries one after another (one array, not one per entry: fewer tables for Redis to
 * make and collect), each as: id, seen bucket ('' for none), seen member, duration key ('' for none), duration
 * (ms), n, n numbers (counter index, increment, …), "<at>", row suffix, m, m values (series index, "value", …);
 * indexes 0-based, a sample's row "<at> <value><suffix>" as sampleRow writes it. Then this analyzer's consumer name.
 * Returns the events counter after the commit, then per entry what became of it: 1 applied, 2 a duplicate,
 * 0 not this commit's (acknowledged before, by this or another analyzer).
 */
export const COMMIT_BATCH = `
local stream, counters, index, durations, versions = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, seriesBase, seenBase, seenTtl, window = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local maxSeries = tonumber(ARGV[6])
local doc = cjson.decode(ARGV[7])
local seriesNames, counterNames, flat = doc.s, doc.c, doc.e
local consumer = ARGV[8]
-- The entries' places in flat: entry i's fields start at starts[i].
local starts = {}
do
  local at, n = 1, 0
  while at <= #flat do
    n = n + 1
    starts[n] = at
    local c = at + 5
    local s = c + flat[c] + 3
    at = s + flat[s] + 1
  end
end
-- Per series (by its index in seriesNames): its new rows, false when refused (max series); in order of first use.
local rows = {}
local order, nOrder = {}, 0
-- Series this batch starts (not in the index before it).
local fresh = {}
-- Increments per counter index; and the few counters the script itself names.
local byIndex = {}
local named = {}
local kept = redis.call('SCARD', index)
local out = {0}
local function chunks(list, n, fn)
  for from = 1, n, 500 do fn(unpack(list, from, math.min(from + 499, n))) end
end
-- Which entries are still pending for this analyzer: one XPENDING over the batch's range (its lowest and highest
-- IDs, "lo" and "hi") rather than an XACK per entry. Should the range hold more of this consumer's entries than
-- the limit, each is asked by its XACK.
local pending = nil
if consumer and #starts > 0 then
  local limit = 2 * #starts + 10
  local reply = redis.call('XPENDING', stream, group, doc.lo, doc.hi, limit, consumer)
  if #reply < limit then
    pending = {}
    for i = 1, #reply do pending[reply[i][1]] = true end
  end
end
local acked, nAcked = {}, 0
local function take(id)
  if pending == nil then return redis.call('XACK', stream, group, id) == 1 end
  if pending[id] then
    nAcked = nAcked + 1
    acked[nAcked] = id
    return true
  end
  return false
end
-- Which (task, attempt) identities were counted before: one SMISMEMBER per seen set and batch.
local seenKeys = {}
local function seenOf(bucket)
  local key = seenKeys[bucket]
  if key == nil then
    key = seenBase .. bucket
    seenKeys[bucket] = key
  end
  return key
end
local counted = {}
local asks = {}
for _, p in ipairs(starts) do
  if flat[p + 1] ~= '' and (pending == nil or pending[flat[p]]) then
    local seen = seenOf(flat[p + 1])
    local list = asks[seen]
    if list == nil then
      list = {n = 0}
      asks[seen] = list
    end
    list.n = list.n + 1
    list[list.n] = flat[p + 2]
  end
end
for seen, members in pairs(asks) do
  local known = {}
  counted[seen] = known
  chunks(members, members.n, function(...)
    local flags = redis.call('SMISMEMBER', seen, ...)
    local names = {...}
    for i = 1, #flags do
      if flags[i] == 1 then known[names[i]] = true end
    end
  end)
end
local added = {}
local addOrder = {}
for i, p in ipairs(starts) do
  local id, bucket, member, dkey, dvalue = flat[p], flat[p + 1], flat[p + 2], flat[p + 3], flat[p + 4]
  local c = p + 5
  local s = c + flat[c] + 3
  local status = 0
  if take(id) then
    local apply = true
    if bucket ~= '' then
      local seen = seenOf(bucket)
      -- (Every entry this commit takes with a bucket was asked about above.)
      local known = counted[seen]
      if known[member] then
        apply = false
        named.duplicates = (named.duplicates or 0) + 1
      else
        known[member] = true
        local list = added[seen]
        if list == nil then
          list = {n = 0}
          added[seen] = list
          addOrder[#addOrder + 1] = seen
        end
        list.n = list.n + 1
        list[list.n] = member
      end
    end
    if apply and dkey ~= '' then
      local old = tonumber(redis.call('HGET', durations, dkey))
      redis.call('HSET', durations, dkey, math.floor(old and (0.7 * old + 0.3 * dvalue) or dvalue))
    end
    status = apply and 1 or 2
    if apply then
      for k = c + 1, c + flat[c], 2 do
        local ci = flat[k] + 1
        byIndex[ci] = (byIndex[ci] or 0) + flat[k + 1]
      end
      local prefix, suffix = flat[s - 2] .. ' ', flat[s - 1]
      for k = s + 1, s + flat[s], 2 do
        local si = flat[k] + 1
        local list = rows[si]
        if list == nil then
          local series = seriesNames[si]
          list = {n = 0}
          if redis.call('SISMEMBER', index, series) == 0 then
            if kept >= maxSeries then
              list = false
            else
              kept = kept + 1
              fresh[si] = true
            end
          end
          rows[si] = list
          nOrder = nOrder + 1
          order[nOrder] = si
        end
        if list then
          list.n = list.n + 1
          list[list.n] = prefix .. flat[k + 1] .. suffix
        else
          named.series_refused = (named.series_refused or 0) + 1
        end
      end
    end
  end
  out[i + 1] = status
end
chunks(acked, nAcked, function(...) redis.call('XACK', stream, group, ...) end)
for _, seen in ipairs(addOrder) do
  local list = added[seen]
  chunks(list, list.n, function(...) redis.call('SADD', seen, ...) end)
  redis.call('EXPIRE', seen, seenTtl)
end
for c, by in pairs(byIndex) do redis.call('HINCRBY', counters, counterNames[c], by) end
for name, by in pairs(named) do redis.call('HINCRBY', counters, name, by) end
for k = 1, nOrder do
  local si = order[k]
  local list = rows[si]
  if list then
    local series = seriesNames[si]
    local length = 0
    for from = 1, list.n, 1000 do
      length = redis.call('RPUSH', seriesBase .. series, unpack(list, from, math.min(from + 999, list.n)))
    end
    if length > window then redis.call('LTRIM', seriesBase .. series, -window, -1) end
    if fresh[si] then redis.call('SADD', index, series) end
    redis.call('HINCRBY', versions, series, list.n)
  end
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

/**
 * The rows appended to each named series since the version (samples ever appended) the analyzer read it at, read
 * together with the version they bring it to, so none is missed or read twice. The list holds the last `history
 * window` rows appended, so those since version k are its last (now − k). The whole list comes back instead when
 * the analyzer has no version for the series (-1), the series has none (kept before versions were counted), more
 * rows came than the list holds, or the version went back (Redis lost its data).
 * KEYS: the series versions hash. ARGV: series key base, history window, then per series its name and known
 * version. Returns per series {version now (-1: none), 1 if the whole list else 0, rows}.
 */
export const READ_SINCE = `
local base, window = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 2 do
  local series, known = ARGV[i], tonumber(ARGV[i + 1])
  local now = tonumber(redis.call('HGET', KEYS[1], series) or '-1')
  local since = now - known
  if known < 0 or now < 0 or since < 0 or since >= window then
    out[#out + 1] = {now, 1, redis.call('LRANGE', base .. series, 0, -1)}
  elseif since == 0 then
    out[#out + 1] = {now, 0, {}}
  else
    out[#out + 1] = {now, 0, redis.call('LRANGE', base .. series, -since, -1)}
  end
end
return out
`;
