import { isUnicodeText } from './unicode-text.js';
import { type FailureReason, FAILURE_REASONS } from './task-outcome.js';
import { TASK_TYPES, type TaskType } from './task.js';

export const TIMING_EVENT_VERSION = '2';
export const ATTEMPT_OUTCOMES = ['completed', 'failed', 'timeout'] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

/** One finished attempt of one task, as a worker appends it to the timings stream. */
export interface TimingEvent {
  task_id: string;
  task_type: TaskType;
  pool: string;
  worker_id: string;
  /** 1 for the first attempt; a stalled run that another worker picks up again counts as a new start. */
  attempt: number;
  outcome: AttemptOutcome;
  /** True when the task will not run again (completed, or failed for good). */
  final: boolean;
  reason?: FailureReason;
  queued_at: number;
  started_at: number;
  finished_at: number;
  /** From submission to this attempt's start. */
  wait_ms: number;
  run_ms: number;
  metrics: Record<string, number>;
  labels: Record<string, string>;
  /** A test task's file (the analyzer keeps each file's expected duration for ordering runs). */
  test_file?: string;
}

/**
 * Stream fields for XADD: a version and the event as one JSON document. One field instead of sixteen
 * halves what a worker serializes per task and what the analyzer parses per event (measured: see the
 * README's benchmark); `redis-cli XRANGE` still shows it readably.
 */
export function encodeTimingEvent(e: TimingEvent): string[] {
  return ['v', TIMING_EVENT_VERSION, 'e', JSON.stringify(e)];
}

export type DecodeResult = { ok: true; event: TimingEvent } | { ok: false; error: string };

const TYPES = new Set<string>(TASK_TYPES);
const OUTCOMES = new Set<string>(ATTEMPT_OUTCOMES);
const REASONS = new Set<string>(FAILURE_REASONS);

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
// (Half a surrogate pair would fail the analyzer's commit in Redis on every retry: see isUnicodeText.)
const isText = (v: unknown): v is string => typeof v === 'string' && isUnicodeText(v);

function checkMap(value: unknown, name: string, ok: (v: unknown) => boolean): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${name}: expected a JSON object`);
  // (for-in, not Object.entries: the analyzer decodes every event, and the entries' arrays were garbage.)
  const map = value as Record<string, unknown>;
  for (const k in map) {
    if (!Object.hasOwn(map, k)) continue;
    if (!isUnicodeText(k)) throw new Error(`${name}: a key is not Unicode text (half a surrogate pair)`);
    if (!ok(map[k])) throw new Error(`${name}.${k}: unexpected value ${JSON.stringify(map[k])}`);
  }
}

/** Reads a stream entry back; a malformed one is reported (the analyzer counts and skips it), never thrown. */
export function decodeTimingEvent(fields: readonly string[]): DecodeResult {
  let version: string | undefined;
  let body: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'v') version = fields[i + 1];
    else if (fields[i] === 'e') body = fields[i + 1];
  }
  try {
    if (version !== TIMING_EVENT_VERSION) throw new Error(`v: unsupported version ${JSON.stringify(version)}`);
    if (body === undefined) throw new Error('e: missing');
    const e = JSON.parse(body) as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new Error('e: expected a JSON object');
    for (const name of ['task_id', 'pool', 'worker_id'] as const) {
      if (typeof e[name] !== 'string' || e[name] === '') throw new Error(`${name}: missing`);
      if (!isText(e[name])) throw new Error(`${name}: not Unicode text (half a surrogate pair)`);
    }
    if (!TYPES.has(e.task_type as string)) throw new Error(`task_type: unknown ${JSON.stringify(e.task_type)}`);
    if (!OUTCOMES.has(e.outcome as string)) throw new Error(`outcome: unknown ${JSON.stringify(e.outcome)}`);
    if (e.reason !== undefined && !REASONS.has(e.reason as string)) throw new Error(`reason: unknown ${JSON.stringify(e.reason)}`);
    for (const name of ['attempt', 'queued_at', 'started_at', 'finished_at', 'wait_ms', 'run_ms'] as const) {
      if (!isFiniteNumber(e[name])) throw new Error(`${name}: expected a number, got ${JSON.stringify(e[name]) ?? 'nothing'}`);
    }
    if (typeof e.final !== 'boolean') throw new Error('final: expected true or false');
    checkMap(e.metrics, 'metrics', isFiniteNumber);
    checkMap(e.labels, 'labels', isText);
    if (e.test_file !== undefined && !isText(e.test_file)) throw new Error('test_file: expected a string of Unicode text');
    return { ok: true, event: e as unknown as TimingEvent };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}
