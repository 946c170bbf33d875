import type { TestCase } from './test-case.js';

/**
 * What a finished attempt produced. A successful attempt's result is BullMQ's return value; a failed
 * attempt's `TaskFailure` travels as the JSON message of the error the worker throws, so BullMQ keeps
 * it as `failedReason` (the last attempt) and in `stacktrace` (every attempt) with no extra writes.
 */
export const FAILURE_REASONS = [
  'test_failed',
  'benchmark_failed',
  'bad_output',
  'timeout',
  'invalid_task',
  'spawn_failed',
  'synthetic_failure',
  'stalled',
  'worker_error',
  'source_failed',
  'setup_failed',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export interface TaskFailure {
  reason: FailureReason;
  message: string;
  exit_code?: number | null;
  signal?: string | null;
  output_tail?: string;
  duration_ms?: number;
  metrics?: Record<string, number>;
  /** The runner's test cases (kept in the run's record only, never in the task's stored failure). */
  cases?: TestCase[];
}

export interface TaskResult {
  outcome: 'passed' | 'completed';
  worker_id: string;
  duration_ms: number;
  exit_code?: number;
  output_tail?: string;
  metrics: Record<string, number>;
  /** How the runner's test cases ended, when it wrote a JUnit report (the cases themselves go to the run). */
  case_counts?: Record<TestCase['status'], number>;
}

/** Counts of test cases by status. */
export function countCases(cases: readonly TestCase[]): Record<TestCase['status'], number> {
  const out = { passed: 0, failed: 0, error: 0, skipped: 0 };
  for (const c of cases) out[c.status]++;
  return out;
}

/** Reasons that no retry can change: the worker fails these at once, whatever `max_attempts` says. */
export const PERMANENT_FAILURES: ReadonlySet<FailureReason> = new Set(['invalid_task', 'source_failed', 'setup_failed']);

/** What a task may store per attempt, whatever its command printed: message, output tail, metrics. */
export const FAILURE_LIMITS = { messageChars: 1024, outputChars: 4096, metrics: 32 } as const;

/** A failure cut to FAILURE_LIMITS, so no command can make Redis hold more than a few KiB per attempt. */
export function boundFailure({ cases: _cases, ...f }: TaskFailure): TaskFailure {
  const out: TaskFailure = {
    ...f,
    message: f.message.length > FAILURE_LIMITS.messageChars ? `${f.message.slice(0, FAILURE_LIMITS.messageChars)}…` : f.message,
  };
  if (f.output_tail !== undefined) out.output_tail = tail(f.output_tail, FAILURE_LIMITS.outputChars);
  if (f.metrics !== undefined) out.metrics = Object.fromEntries(Object.entries(f.metrics).slice(0, FAILURE_LIMITS.metrics));
  return out;
}

export function encodeFailure(failure: TaskFailure): string {
  return JSON.stringify(boundFailure(failure));
}

const isReason = (v: unknown): v is FailureReason => typeof v === 'string' && (FAILURE_REASONS as readonly string[]).includes(v);

/** Reads back an encoded failure; a plain message (BullMQ's own, e.g. a stall) is classified by its text. */
export function decodeFailure(text: string | undefined | null): TaskFailure | null {
  if (!text) return null;
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as Partial<TaskFailure>;
      if (isReason(parsed.reason) && typeof parsed.message === 'string') return parsed as TaskFailure;
    } catch {
      // not ours: fall through
    }
  }
  return { reason: /stalled/i.test(text) ? 'stalled' : 'worker_error', message: text };
}

/** Keeps the last `maxBytes` of text, cut at a character boundary. */
export function tail(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : text.slice(text.length - maxChars);
}
