import type { FileResult } from './run-outcome.js';

/** States in which a file has run its course. */
export const DONE_STATES: ReadonlySet<FileResult['state']> = new Set(['passed', 'skipped', 'flaky', 'failed', 'error', 'cancelled']);
/** States a dependency must reach for its dependents to run. */
export const PASSED_STATES: ReadonlySet<FileResult['state']> = new Set(['passed', 'skipped', 'flaky']);

/** A task of a run that waits on others: its key and what it depends on (`*`: every test file of the run). */
export interface BlockedTask {
  key: string;
  deps: readonly string[];
}

/** What to do with a blocked task now: cancel it (with the reason a user reads), queue it, or keep waiting. */
export type Release = { key: string; action: 'cancel'; reason: string } | { key: string; action: 'queue' };

/**
 * Dependency release for one run, on the states its files are in now: a cancelled run cancels what waits; a
 * dependency that ended other than passed cancels its dependents, naming it; dependents whose dependencies all
 * passed (flaky counts as passed) are queued; the rest wait.
 */
export function releaseBlocked(
  files: ReadonlyArray<Pick<FileResult, 'key' | 'state'>>,
  blocked: readonly BlockedTask[],
  testFiles: readonly string[],
  cancelled: boolean,
): Release[] {
  const byKey = new Map(files.map((f) => [f.key, f]));
  const out: Release[] = [];
  for (const t of blocked) {
    if (cancelled) {
      out.push({ key: t.key, action: 'cancel', reason: 'the run was cancelled' });
      continue;
    }
    const deps = t.deps.flatMap((d) => (d === '*' ? testFiles : [d]));
    const bad = deps.map((d) => byKey.get(d)).find((f) => f && DONE_STATES.has(f.state) && !PASSED_STATES.has(f.state));
    if (bad) {
      const how = bad.state === 'cancelled' ? 'was cancelled' : bad.state === 'error' ? 'could not run' : 'failed';
      out.push({ key: t.key, action: 'cancel', reason: `dependency ${bad.key} ${how}` });
      continue;
    }
    const state = (d: string) => byKey.get(d)?.state;
    if (deps.every((d) => PASSED_STATES.has(state(d) as FileResult['state']))) out.push({ key: t.key, action: 'queue' });
  }
  return out;
}
