/**
 * The analyzer's Lua scripts. Each runs atomically in Redis, so what it checks and what it writes cannot be
 * torn apart by a crash or interleaved with another analyzer.
 */

/**
 * Lua that keeps a series list to its last `history window` rows. An element of the list holds one row, or
 * several separated by newlines (what one commit appended to the series: a row never holds a newline, see
 * sampleRow), so Redis makes one element a series and commit rather than one a sample. `keep(held, base,
 * countsBase, window, series, added, version)` is called once an element of `added` rows was pushed to the list
 * (key base .. series) and the series' version (samples ever appended, the versions hash) went up to `version`.
 * It does nothing unless the version passed a multiple of a quarter window (q): a commit costs Redis the push and
 * the version's HINCRBY, no more. When it passed one, the rows held are known from the held hash, which records
 * `<rows held> <version>` at the last trim (rows held now: those plus the versions since), and whole elements are
 * dropped from the front while the rest still hold the window. The list thus holds at least the window, and less
 * than a window and a quarter plus one element's rows; readers keep the last `window` rows.
 *
 * Lists written by earlier analyzers have no such record (a held count updated on every commit, and a counts
 * list with the rows of each element; or neither, one row an element): their rows are counted from the list once,
 * by its newlines, and the counts list is deleted.
 */
const KEEP_WINDOW = `
local function rowsOf(element)
  local _, newlines = string.gsub(element, '\\n', '')
  return newlines + 1
end
local function keep(held, base, countsBase, window, series, added, version)
  local q = math.ceil(window / 4)
  if math.floor(version / q) == math.floor((version - added) / q) then return end
  local list = base .. series
  local count
  local record = redis.call('HGET', held, series)
  local space = record and string.find(record, ' ', 1, true)
  if space then
    local at = tonumber(string.sub(record, space + 1))
    -- (A version behind the record: the versions hash lost its data and the list did not. Counted afresh.)
    if at <= version then count = tonumber(string.sub(record, 1, space - 1)) + version - at end
  end
  if count == nil then
    count = 0
    for _, element in ipairs(redis.call('LRANGE', list, 0, -1)) do count = count + rowsOf(element) end
    redis.call('DEL', countsBase .. series)
  end
  -- Front elements are read 64 at a time, as the walk needs them.
  local elements, rows, fronts = 0, 0, {}
  while count - rows > window do
    if fronts[elements + 1] == nil then
      local more = redis.call('LRANGE', list, elements, elements + 63)
      if #more == 0 then break end
      for k = 1, #more do fronts[elements + k] = more[k] end
    end
    local front = rowsOf(fronts[elements + 1])
    if count - rows - front < window then break end
    elements = elements + 1
    rows = rows + front
  end
  if elements > 0 then redis.call('LPOP', list, elements) end
  redis.call('HSET', held, series, (count - rows) .. ' ' .. version)
end
`;

/**
 * Commits one batch of timing entries, all or nothing: every entry's effects are applied, and every entry
 * acknowledged, only if each is still pending for this analyzer (one XPENDING over the batch's range, or one per
 * entry should that range hold more of its entries than the limit) and no event the batch applies was counted
 * before (a (task, attempt) identity in its seen set: a worker repeated a write it could not confirm). An entry
 * another analyzer claimed and committed meanwhile, or one committed before a crash and read again, thus changes
 * nothing. When a check fails nothing is written, and the reply says per entry whether it is pending and per
 * identity whether it was counted: the analyzer commits again without the entries that are not its own, and
 * with those counted before as duplicates (acknowledged, counted as `duplicates`, nothing else applied).
 *
 * The batch comes with its effects already added up (CommitBatch), so Redis's work grows with the batch's
 * entries (its IDs and identities) and its series, not with the samples: counters as totals, each test file's
 * durations in order, and each series' new rows as one element (see KEEP_WINDOW). A test file's attempt that
 * ran its course (passed or failed, not timed out or errored) moves the file's expected duration (`<pool>|<file>`
 * in the durations hash): an exponentially weighted mean, weight 0.3, rounded down at each step. A series not
 * kept yet is refused (its samples counted as `series_refused`) once `max series` are kept. Each series' count
 * of appended samples goes up in the versions hash, so the analysis reads only what moved.
 *
 * KEYS: stream, counters hash, series index set, durations hash, series versions hash, series held hash.
 * ARGV: group, series key base, series counts key base, seen-set key base, seen TTL (s), history window, max
 * series, consumer, the batch's lowest and highest IDs; then the batch in sections, each its count followed by
 * its items: IDs; seen buckets, each its name, k and k identities; counters, each its name and increment;
 * durations, each its key, k and k values in order; series, each its name, k and its k rows joined by newlines.
 * Returns the events counter once applied; or, when a check failed, -1, then a 1 or 0 per ID (pending for this
 * analyzer or not), then a 1 or 0 per identity in the order sent (counted before or not).
 */
export const COMMIT_BATCH = `${KEEP_WINDOW}
local stream, counters, index, durations, versions, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group, seriesBase, countsBase, seenBase = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local seenTtl, window, maxSeries, consumer = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local lo, hi = ARGV[9], ARGV[10]
local function chunks(from, to, fn)
  for a = from, to, 500 do fn(unpack(ARGV, a, math.min(a + 499, to))) end
end
local nIds = tonumber(ARGV[11])
local idsFrom, idsTo = 12, 11 + nIds
-- Pending for this analyzer: one XPENDING over the range answers for all when it holds no more of its entries
-- than the batch; otherwise each entry is asked on its own.
local pending = {}
local allPending = true
local reply = redis.call('XPENDING', stream, group, lo, hi, nIds + 1, consumer)
if #reply <= nIds then
  local set = {}
  for i = 1, #reply do set[reply[i][1]] = true end
  for a = idsFrom, idsTo do
    pending[a] = set[ARGV[a]] == true
    allPending = allPending and pending[a]
  end
else
  for a = idsFrom, idsTo do
    pending[a] = #redis.call('XPENDING', stream, group, ARGV[a], ARGV[a], 1, consumer) == 1
    allPending = allPending and pending[a]
  end
end
-- Counted before: one SMISMEMBER per seen bucket (in chunks).
local at = idsTo + 2
local buckets, counted = {}, {}
local fresh = true
for b = 1, tonumber(ARGV[idsTo + 1]) do
  local key, k = seenBase .. ARGV[at], tonumber(ARGV[at + 1])
  local from = at + 2
  buckets[b] = {key, from, from + k - 1}
  chunks(from, from + k - 1, function(...)
    for _, flag in ipairs(redis.call('SMISMEMBER', key, ...)) do
      counted[#counted + 1] = flag
      if flag == 1 then fresh = false end
    end
  end)
  at = from + k
end
if not (allPending and fresh) then
  local out = {-1}
  for a = idsFrom, idsTo do out[#out + 1] = pending[a] and 1 or 0 end
  for i = 1, #counted do out[#out + 1] = counted[i] end
  return out
end
chunks(idsFrom, idsTo, function(...) redis.call('XACK', stream, group, ...) end)
for _, b in ipairs(buckets) do
  if b[3] >= b[2] then
    chunks(b[2], b[3], function(...) redis.call('SADD', b[1], ...) end)
    redis.call('EXPIRE', b[1], seenTtl)
  end
end
at = at + 1
for _ = 1, tonumber(ARGV[at - 1]) do
  redis.call('HINCRBY', counters, ARGV[at], ARGV[at + 1])
  at = at + 2
end
at = at + 1
for _ = 1, tonumber(ARGV[at - 1]) do
  local key, k = ARGV[at], tonumber(ARGV[at + 1])
  local mean = tonumber(redis.call('HGET', durations, key))
  for a = at + 2, at + 1 + k do
    local ms = tonumber(ARGV[a])
    mean = math.floor(mean and (0.7 * mean + 0.3 * ms) or ms)
  end
  redis.call('HSET', durations, key, mean)
  at = at + 2 + k
end
at = at + 1
-- Which series are kept already: one SMISMEMBER for the batch's series (in chunks); those it starts are added at once.
local nSeries, names = tonumber(ARGV[at - 1]), {}
for i = 1, nSeries do names[i] = ARGV[at + 3 * (i - 1)] end
local known = {}
for from = 1, nSeries, 500 do
  for _, flag in ipairs(redis.call('SMISMEMBER', index, unpack(names, from, math.min(from + 499, nSeries)))) do
    known[#known + 1] = flag == 1
  end
end
local kept = redis.call('SCARD', index)
local refused, started = 0, {}
for i = 1, nSeries do
  local series, k, rows = ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2]
  if not known[i] and kept >= maxSeries then
    refused = refused + k
  else
    if not known[i] then
      kept = kept + 1
      started[#started + 1] = series
    end
    redis.call('RPUSH', seriesBase .. series, rows)
    keep(held, seriesBase, countsBase, window, series, k, redis.call('HINCRBY', versions, series, k))
  end
  at = at + 3
end
for from = 1, #started, 500 do redis.call('SADD', index, unpack(started, from, math.min(from + 499, #started))) end
if refused > 0 then redis.call('HINCRBY', counters, 'series_refused', refused) end
return {tonumber(redis.call('HGET', counters, 'events') or '0')}
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
 * and counted (`series_refused`, and apart as `series_refused_derived`) once `max series` are kept. Each list
 * keeps its window as ingest's do (KEEP_WINDOW).
 * KEYS: the series index, the counters hash, the series versions hash, the series held hash. ARGV: max series,
 * history window, series key base, series counts key base, then per sample its series name and row.
 */
export const APPEND_SAMPLES = `${KEEP_WINDOW}
local maxSeries, window, base, countsBase = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local kept = redis.call('SCARD', KEYS[1])
for i = 5, #ARGV, 2 do
  local series, row = ARGV[i], ARGV[i + 1]
  local known = redis.call('SISMEMBER', KEYS[1], series) == 1
  if known or kept < maxSeries then
    if not known then
      redis.call('SADD', KEYS[1], series)
      kept = kept + 1
    end
    redis.call('RPUSH', base .. series, row)
    keep(KEYS[4], base, countsBase, window, series, 1, redis.call('HINCRBY', KEYS[3], series, 1))
  else
    redis.call('HINCRBY', KEYS[2], 'series_refused', 1)
    redis.call('HINCRBY', KEYS[2], 'series_refused_derived', 1)
  end
end
return kept
`;

/**
 * The rows appended to each named series since the version (samples ever appended) the analyzer read it at, read
 * together with the version they bring it to, so none is missed or read twice. The list holds at least the last
 * `history window` rows appended, an element one row or more (KEEP_WINDOW), so its last (now − k) elements hold
 * the rows since version k: the reader keeps the last (now − k) rows of them. The whole list comes back instead when
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
