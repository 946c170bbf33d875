import { type FailureReason, FAILURE_REASONS } from './task-outcome.js';
import { TASK_TYPES, type TaskType } from './task.js';

export const TIMING_EVENT_VERSION = '1';
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
}

/** Flat field/value pairs for XADD: scalars stay readable in `redis-cli XRANGE`, maps are JSON. */
export function encodeTimingEvent(e: TimingEvent): string[] {
  const fields = [
    'v',
    TIMING_EVENT_VERSION,
    'task_id',
    e.task_id,
    'task_type',
    e.task_type,
    'pool',
    e.pool,
    'worker_id',
    e.worker_id,
    'attempt',
    String(e.attempt),
    'outcome',
    e.outcome,
    'final',
    e.final ? '1' : '0',
    'queued_at',
    String(e.queued_at),
    'started_at',
    String(e.started_at),
    'finished_at',
    String(e.finished_at),
    'wait_ms',
    String(e.wait_ms),
    'run_ms',
    String(e.run_ms),
    'metrics',
    JSON.stringify(e.metrics),
    'labels',
    JSON.stringify(e.labels),
  ];
  if (e.reason) fields.push('reason', e.reason);
  return fields;
}

export type DecodeResult = { ok: true; event: TimingEvent } | { ok: false; error: string };

const TYPES = new Set<string>(TASK_TYPES);
const OUTCOMES = new Set<string>(ATTEMPT_OUTCOMES);
const REASONS = new Set<string>(FAILURE_REASONS);

function finiteOrFail(raw: string | undefined, name: string): number {
  const n = raw === undefined || raw === '' ? NaN : Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name}: expected a number, got ${raw === undefined ? 'nothing' : JSON.stringify(raw)}`);
  return n;
}

function jsonMap<T>(raw: string | undefined, name: string, valueOk: (v: unknown) => v is T): Record<string, T> {
  if (raw === undefined) return {};
  const parsed: unknown = JSON.parse(raw);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${name}: expected a JSON object`);
  for (const [k, v] of Object.entries(parsed)) if (!valueOk(v)) throw new Error(`${name}.${k}: unexpected value ${JSON.stringify(v)}`);
  return parsed as Record<string, T>;
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isString = (v: unknown): v is string => typeof v === 'string';

/** Reads a stream entry back; a malformed one is reported (the analyzer counts and skips it), never thrown. */
export function decodeTimingEvent(fields: readonly string[]): DecodeResult {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
  try {
    if (f.v !== TIMING_EVENT_VERSION) throw new Error(`v: unsupported version ${JSON.stringify(f.v)}`);
    for (const name of ['task_id', 'pool', 'worker_id'] as const) if (!f[name]) throw new Error(`${name}: missing`);
    if (!TYPES.has(f.task_type ?? '')) throw new Error(`task_type: unknown ${JSON.stringify(f.task_type)}`);
    if (!OUTCOMES.has(f.outcome ?? '')) throw new Error(`outcome: unknown ${JSON.stringify(f.outcome)}`);
    if (f.reason !== undefined && !REASONS.has(f.reason)) throw new Error(`reason: unknown ${JSON.stringify(f.reason)}`);
    const event: TimingEvent = {
      task_id: f.task_id as string,
      task_type: f.task_type as TaskType,
      pool: f.pool as string,
      worker_id: f.worker_id as string,
      attempt: finiteOrFail(f.attempt, 'attempt'),
      outcome: f.outcome as AttemptOutcome,
      final: f.final === '1',
      queued_at: finiteOrFail(f.queued_at, 'queued_at'),
      started_at: finiteOrFail(f.started_at, 'started_at'),
      finished_at: finiteOrFail(f.finished_at, 'finished_at'),
      wait_ms: finiteOrFail(f.wait_ms, 'wait_ms'),
      run_ms: finiteOrFail(f.run_ms, 'run_ms'),
      metrics: jsonMap(f.metrics, 'metrics', isFiniteNumber),
      labels: jsonMap(f.labels, 'labels', isString),
    };
    if (f.reason !== undefined) event.reason = f.reason as FailureReason;
    return { ok: true, event };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}
