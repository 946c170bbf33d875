import type { ChainableCommander, Redis } from 'ioredis';
import { encodeTimingEvent, type TimingEvent } from '@fleet/contracts';
import type { FleetKeys } from './keys.js';

/**
 * A run's record of an attempt goes only into a run that still exists (not expired, not deleted); its test
 * cases go to the run's cases hash, so reading a run's progress does not read every case.
 * KEYS: the run's attempts hash, its cases hash. ARGV: field, attempt JSON, cases JSON ('' for none).
 */
const RECORD_ATTEMPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
return 1
`;

/** What one finished attempt writes: its timing event and, for a task of a run, its record there. */
export interface RecordedOutcome {
  event: TimingEvent;
  run?: { id: string; attempt: { key: string; attempt: number; cases?: unknown } };
}

type WithRecord = ChainableCommander & { recordAttempt(...args: string[]): ChainableCommander };

/** Defines the script on a connection (once per connection, before `addOutcome` on its pipelines). */
export function defineRecordAttempt(redis: Redis): void {
  redis.defineCommand('recordAttempt', { numberOfKeys: 2, lua: RECORD_ATTEMPT });
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
    `${attempt.attempt}:${attempt.key}`,
    JSON.stringify(attempt),
    cases ? JSON.stringify(cases) : '',
  );
  return 2;
}
