import type { ChainableCommander, Redis } from 'ioredis';
import { encodeTimingEvent, type TimingEvent } from '@fleet/contracts';
import type { FleetKeys } from './keys.js';

/** Entries kept (about) in the runs' news stream: enough for every coordinator to have read them. */
export const RUN_NEWS_MAXLEN = 1000;

/** The attempts hash's field counting the run's recorded last attempts (the news carries it). */
export const RUN_FINALS_FIELD = '_finals';

/**
 * A run's record of an attempt goes only into a run that still exists (not expired, not deleted); its test
 * cases go to the run's cases hash, so reading a run's progress does not read every case. A task's last attempt
 * also counts in the hash's `_finals` (once per recorded field) and, in the same step, tells the runs' news
 * stream with that count when the news can change anything (a coordinator never reads the news before the
 * record). It cannot while a run without dependents (`waits` 0), not a build's and not cancelled, has fewer
 * last attempts than tasks: that is checked here, against the run's record as it is when the attempt is
 * recorded, so a suite's files but its last wake no coordinator (a wake, a read of the run and a round trip
 * each, on the cores the files run on). The coordinator's `mayHaveWork` is the same test.
 * KEYS: the run's attempts hash, its cases hash, the news stream, the run's hash. ARGV: field, attempt JSON,
 * cases JSON ('' for none), the run's id when the attempt is its task's last ('' otherwise), the stream's cap.
 */
const RECORD_ATTEMPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local added = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
if ARGV[4] ~= '' then
  local finals
  if added == 1 then finals = redis.call('HINCRBY', KEYS[1], '${RUN_FINALS_FIELD}', 1)
  else finals = tonumber(redis.call('HGET', KEYS[1], '${RUN_FINALS_FIELD}') or '0') end
  local run = redis.call('HMGET', KEYS[4], 'task_count', 'waits', 'build', 'cancelled_at')
  local count = tonumber(run[1])
  if not (count and run[2] == '0' and not run[3] and not run[4] and finals < count) then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'run', ARGV[4], 'finals', finals)
  end
end
return 1
`;

/** What one finished attempt writes: its timing event and, for a task of a run, its record there. */
export interface RecordedOutcome {
  event: TimingEvent;
  run?: { id: string; attempt: { key: string; attempt: number; final?: boolean; cases?: unknown } };
}

type WithRecord = ChainableCommander & { recordAttempt(...args: string[]): ChainableCommander };

/** Defines the script on a connection (once per connection, before `addOutcome` on its pipelines). */
export function defineRecordAttempt(redis: Redis): void {
  redis.defineCommand('recordAttempt', { numberOfKeys: 4, lua: RECORD_ATTEMPT });
}

/**
 * Adds an attempt's writes to a pipeline or MULTI (the timing event on the stream, capped near `maxLen`, and
 * the run's record of it); returns how many commands were added.
 */
export function addOutcome(pipeline: ChainableCommander, keys: FleetKeys, maxLen: number, outcome: RecordedOutcome): number {
  pipeline.xadd(keys.timings, 'MAXLEN', '~', maxLen, '*', ...encodeTimingEvent(outcome.event));
  const run = outcome.run;
  if (!run) return 1;
  const { cases, ...attempt } = run.attempt;
  (pipeline as WithRecord).recordAttempt(
    keys.runAttempts(run.id),
    keys.runCases(run.id),
    keys.runNews,
    keys.run(run.id),
    `${attempt.attempt}:${attempt.key}`,
    JSON.stringify(attempt),
    cases ? JSON.stringify(cases) : '',
    attempt.final ? run.id : '',
    String(RUN_NEWS_MAXLEN),
  );
  return 2;
}
