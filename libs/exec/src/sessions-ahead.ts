import { fillArgv, runsWarm, type WorkerTemplate } from '@fleet/contracts';
import type { SessionRequest, WarmServerPool } from './warm-python.js';

/** What a session runner's command is filled with to start its servers before any file: both come out again. */
const AHEAD_FILE = 'fleet-session-ahead.py';
const AHEAD_JUNIT = '/fleet-session-ahead.xml';

/**
 * Starts the session servers of the runners that run files in a session (`runners.warm: "session"`: pytest's, or
 * Node's) before any file, up to `slots` in all, so the first files do not wait for the runner's start (a file
 * that comes while one starts takes it). `vars` fill the runner's command as its files will (the pool, the worker); a
 * command that names more than that (the task, its attempt) differs per file, and its servers are started by
 * its files. Returns how many it started.
 */
export function startSessionsAhead(
  pool: WarmServerPool,
  runners: Pick<WorkerTemplate['runners'], 'test' | 'warm'>,
  vars: Readonly<Record<string, string>>,
  req: Omit<SessionRequest, 'argv'>,
  slots: number,
): number {
  let started = 0;
  for (const [ext, runner] of Object.entries(runners.test)) {
    if (runsWarm(runners, ext) !== 'session') continue;
    const junit = runner.some((a) => a.includes('{junit_file}')) ? AHEAD_JUNIT : undefined;
    let argv: string[];
    try {
      argv = fillArgv(runner, { ...vars, test_file: AHEAD_FILE, junit_file: junit ?? '' });
    } catch {
      continue;
    }
    started += pool.prestart({ ...req, argv }, { file: AHEAD_FILE, ...(junit && { junit }) }, slots - started);
  }
  return started;
}
