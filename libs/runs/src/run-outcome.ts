import type { FailureReason } from '@fleet/contracts';
import type { TestCase } from '@fleet/contracts';

/** What a worker records for one attempt of one task of a run (before the outcome is recorded in BullMQ). */
export interface RunAttempt {
  key: string;
  /** 1 for the first attempt, 2 for its first retry, … */
  attempt: number;
  status: 'passed' | 'failed' | 'error';
  reason?: FailureReason;
  /** No attempt follows this one. */
  final: boolean;
  duration_ms: number;
  worker_id: string;
  started_at: number;
  finished_at: number;
  message?: string;
  output_tail?: string;
  /** From the runner's JUnit report; absent when the runner writes none (then the file is one case). */
  cases?: TestCase[];
  /** It passed without running a test: every case skipped, or the runner's exit code said it found none. */
  skipped?: boolean;
}

/** Failures that say nothing about the test itself (it could not run): JUnit `error`, run verdict `error`. */
const INFRASTRUCTURE: ReadonlySet<FailureReason> = new Set([
  'invalid_task',
  'spawn_failed',
  'worker_error',
  'bad_output',
  'stalled',
  'source_failed',
  'setup_failed',
]);

export const attemptStatus = (reason: FailureReason | undefined): RunAttempt['status'] =>
  reason === undefined ? 'passed' : INFRASTRUCTURE.has(reason) ? 'error' : 'failed';

/** Where a task of a run is now, when no final attempt says how it ended. */
export type LiveState = 'blocked' | 'queued' | 'running' | 'cancelled';

export interface CaseResult extends TestCase {
  /** Failed on an earlier attempt, passed on the last. */
  flaky: boolean;
  /** The failures of earlier attempts of a flaky case (Surefire's flakyFailure). */
  earlier_failures: Array<{ attempt: number; message?: string; output?: string }>;
  quarantined: boolean;
}

export interface FileResult {
  key: string;
  task_id: string | null;
  pool: string;
  /** `skipped`: it passed without running a test (every case skipped, or the runner said it found none). */
  state: 'blocked' | 'queued' | 'running' | 'passed' | 'skipped' | 'failed' | 'error' | 'flaky' | 'cancelled';
  attempts: number;
  duration_ms: number | null;
  /** What made it fail, error or get cancelled. */
  reason: string | null;
  message: string | null;
  output_tail: string | null;
  worker_id: string | null;
  quarantined: boolean;
  cases: CaseResult[];
}

/** The identity of a test for flakiness and quarantine: the file, or the file and the case. */
export const testId = (file: string, caseName?: string) => (caseName === undefined ? file : `${file}::${caseName}`);

/**
 * One file's (one task's) result from its attempts: the last attempt decides; a file (or case) that failed and
 * then passed on a retry is flaky, and counts as passed. Without a final attempt the file is where `live` says.
 */
export function fileResult(
  key: string,
  task: { id: string | null; pool: string },
  attempts: readonly RunAttempt[],
  live: LiveState | undefined,
  quarantined: (id: string) => boolean,
  cancelReason?: string,
): FileResult {
  // (Run views build this for every file of a run on every poll: no copies, spreads or sorts it can do without.)
  const sorted = attempts.length > 1 ? [...attempts].sort((a, b) => a.attempt - b.attempt) : attempts;
  const last = sorted.length > 0 ? sorted[sorted.length - 1] : undefined;
  const finished = last?.final ? last : undefined;
  const fileQuarantined = quarantined(testId(key));
  if (!finished) {
    return {
      key,
      task_id: task.id,
      pool: task.pool,
      attempts: sorted.length,
      duration_ms: last?.duration_ms ?? null,
      worker_id: last?.worker_id ?? null,
      quarantined: fileQuarantined,
      state: live ?? 'queued',
      reason: live === 'cancelled' ? (cancelReason ?? 'cancelled') : null,
      message: null,
      output_tail: null,
      cases: [],
    };
  }
  const cases = caseResults(key, sorted, fileQuarantined, quarantined);
  let failedBefore = false;
  for (let i = 0; i < sorted.length - 1; i++) if (sorted[i].status !== 'passed') failedBefore = true;
  const state =
    finished.status !== 'passed' ? finished.status : failedBefore || cases.some((c) => c.flaky) ? 'flaky' : finished.skipped ? 'skipped' : 'passed';
  return {
    key,
    task_id: task.id,
    pool: task.pool,
    attempts: sorted.length,
    duration_ms: finished.duration_ms ?? null,
    worker_id: finished.worker_id ?? null,
    quarantined: fileQuarantined,
    state,
    reason: finished.reason ?? null,
    message: finished.message ?? null,
    output_tail: finished.output_tail ?? null,
    cases,
  };
}

/** An attempt's cases: its JUnit cases, or the file as one case when its runner wrote none. */
function casesOf(key: string, a: RunAttempt): TestCase[] {
  if (a.cases && a.cases.length > 0) return a.cases;
  const c: TestCase = { name: key, classname: key, time_s: a.duration_ms / 1000, status: a.skipped ? 'skipped' : a.status };
  if (a.message) c.message = a.message;
  if (a.output_tail) c.output = a.output_tail;
  return [c];
}

/**
 * The final attempt's cases (or the file as one case), each marked flaky when it failed on an earlier attempt.
 * `fileQuarantined`: whether the file as a whole is quarantined.
 */
function caseResults(key: string, attempts: readonly RunAttempt[], fileQuarantined: boolean, quarantined: (id: string) => boolean): CaseResult[] {
  const lastCases = casesOf(key, attempts[attempts.length - 1]);
  const earlier = attempts.slice(0, -1).map((a) => ({ attempt: a.attempt, cases: new Map(casesOf(key, a).map((c) => [c.name, c])) }));
  return lastCases.map((c) => {
    const fails: CaseResult['earlier_failures'] = [];
    for (const e of earlier) {
      const before = e.cases.get(c.name) ?? (e.cases.size === 1 && lastCases.length === 1 ? [...e.cases.values()][0] : undefined);
      if (before && (before.status === 'failed' || before.status === 'error'))
        fails.push({ attempt: e.attempt, message: before.message, output: before.output });
    }
    return {
      ...c,
      flaky: c.status === 'passed' && fails.length > 0,
      earlier_failures: c.status === 'passed' ? fails : [],
      quarantined: fileQuarantined || quarantined(testId(key, c.name)),
    };
  });
}

export type RunState = 'queued' | 'running' | 'passed' | 'failed' | 'cancelled' | 'error';

export interface RunCounts {
  total: number;
  done: number;
  passed: number;
  failed: number;
  error: number;
  flaky: number;
  skipped: number;
  cancelled: number;
  running: number;
  queued: number;
  blocked: number;
  quarantined: number;
}

export function countFiles(files: readonly FileResult[]): RunCounts {
  const c: RunCounts = {
    total: files.length,
    done: 0,
    passed: 0,
    failed: 0,
    error: 0,
    flaky: 0,
    skipped: 0,
    cancelled: 0,
    running: 0,
    queued: 0,
    blocked: 0,
    quarantined: 0,
  };
  for (const f of files) {
    c[f.state] += 1;
    if (f.state !== 'queued' && f.state !== 'running' && f.state !== 'blocked') c.done += 1;
    if (f.quarantined) c.quarantined += 1;
  }
  return c;
}

/**
 * The run's state: in progress while any file is blocked, queued or running (`queued` until one has started);
 * then `cancelled` if it was cancelled, `error` if a file (not quarantined) could not run, `failed` if a file
 * (not quarantined) failed, otherwise `passed`, flaky files included. A file failing only in quarantined cases
 * does not fail the run.
 */
export function runState(files: readonly FileResult[], cancelled: boolean): RunState {
  const inProgress = files.some((f) => f.state === 'blocked' || f.state === 'queued' || f.state === 'running');
  if (inProgress) return files.some((f) => f.state !== 'queued' && f.state !== 'blocked') ? 'running' : 'queued';
  if (cancelled) return 'cancelled';
  const counts = (f: FileResult) =>
    !f.quarantined && !(f.cases.length > 0 && f.cases.every((c) => c.status === 'passed' || c.status === 'skipped' || c.quarantined));
  if (files.some((f) => f.state === 'error' && counts(f))) return 'error';
  if (files.some((f) => f.state === 'failed' && counts(f))) return 'failed';
  return 'passed';
}

/**
 * Seconds until the run should finish: what is left (each unfinished file's expected duration, less what a
 * running one has done) spread over the worker slots, but never less than the longest single file left.
 */
export function etaSeconds(left: ReadonlyArray<{ expectedMs: number; runningForMs?: number }>, slots: number): number | null {
  if (left.length === 0) return 0;
  if (slots <= 0) return null;
  const remaining = left.map((f) => Math.max(0, f.expectedMs - (f.runningForMs ?? 0)));
  const total = remaining.reduce((a, b) => a + b, 0);
  return Math.ceil(Math.max(total / slots, ...remaining) / 1000);
}
