import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { glob } from 'tinyglobby';
import {
  exitMeaning,
  type ExitMeaning,
  extensionOf,
  fillArgv,
  noTestCases,
  runsWarm,
  tail,
  type TestCase,
  type WarmMode,
  type WorkerTemplate,
} from '@fleet/contracts';
import {
  makeReportDir,
  readJUnitReport,
  realPathWithin,
  removeReportDir,
  type RunRequest,
  runProcess,
  TASK_COOKIE_VAR,
  startSessionsAhead,
  WarmServerPool,
} from '@fleet/exec';
import { type AttemptReport, type Lease, type LeaseAnswer, parseJUnit, type ReportAnswer } from '@fleet/runs';
import { type Api, call, CliError } from './api.js';

/** What `fleet run --build` was asked (see `run`). */
export interface NodeOptions {
  build: string;
  nodeIndex: number;
  nodeTotal: number;
  slots: number;
  patterns: string[];
  retries: number;
  pool?: string;
  name?: string;
  labels: Record<string, string>;
  timeoutMs?: number;
  onlyFailedOf?: string;
}

interface Joined {
  run: { id: string; state: string; counts: { total: number }; pool: string };
  lease_ms: number;
  runners: Record<string, string[]>;
  /** Absent from a coordinator older than this CLI: then only the runners' own conventions apply. */
  exit_codes?: Record<string, Record<string, ExitMeaning>>;
  warm?: Record<string, WarmMode>;
  differs: { only_here: number; only_in_run: number };
}

/** Output kept per attempt in the report (the coordinator keeps the end). */
const OUTPUT_CHARS = 16 * 1024;
/** A runner is stopped this long after SIGTERM with SIGKILL. */
const KILL_GRACE_MS = 5000;
/** How long an idle slot's request waits on the coordinator for a file or the run's end. */
const IDLE_WAIT_MS = 2000;
/** How long a node keeps trying a coordinator that is restarting or overloaded before it gives up. */
const TRANSIENT_FOR_MS = 60_000;

/**
 * One call to the coordinator that rides out what passes (the coordinator restarting, a 429, a 502/503):
 * retried with backoff for up to a minute. A refusal (4xx) is not retried.
 */
async function steady<T>(a: Api, method: string, path: string, body?: unknown): Promise<T> {
  const deadline = Date.now() + TRANSIENT_FOR_MS;
  for (let wait = 200; ; wait = Math.min(wait * 2, 5000)) {
    try {
      return await call<T>(a, a.coordinator, method, path, body);
    } catch (err) {
      const status = err instanceof CliError ? err.status : undefined;
      const transient = status === 0 || status === 429 || status === 502 || status === 503 || status === 504;
      if (!transient || Date.now() + wait > deadline) throw err;
      if (wait === 200) process.stderr.write(`${(err as Error).message}: retrying for up to ${TRANSIENT_FOR_MS / 1000} s\n`);
      await sleep(wait);
    }
  }
}

/**
 * The test files the patterns name in this checkout: files as given, folders and globs expanded (hidden
 * entries and node_modules skipped), sorted, each once. The build's first node makes the run of its list.
 */
export async function findTests(patterns: readonly string[], cwd = process.cwd()): Promise<string[]> {
  const found = new Set<string>();
  for (const p of patterns) {
    const isGlob = /[*?[{]/.test(p);
    const path = join(cwd, p);
    if (!isGlob && existsSync(path) && statSync(path).isFile()) {
      found.add(p.replace(/^\.\//, ''));
      continue;
    }
    const isDir = !isGlob && existsSync(path) && statSync(path).isDirectory();
    if (!isGlob && !isDir) throw new CliError(`${p}: no such file or folder in ${cwd}`, 2);
    const pattern = isDir ? `${p.replace(/\/$/, '')}/**/*` : p;
    const matches = await glob(pattern, { cwd, onlyFiles: true, dot: false, followSymbolicLinks: false, ignore: ['**/node_modules/**'] });
    if (matches.length === 0) throw new CliError(`${p}: matches no file in ${cwd}`, 2);
    for (const m of matches) found.add(m);
  }
  return [...found].sort();
}

/** The node's record of what it ran itself, printed at the end. */
interface Ran {
  file: string;
  attempt: number;
  status: 'passed' | 'failed' | 'lost';
  ms: number;
}

/**
 * Serves a build as one of its nodes: joins (the first node creates the run), then keeps its slots busy with
 * the run's files until the run has ended, each file run here with the pool's runner, its lease renewed while
 * it runs. Returns the run's id and what this node ran.
 */
export async function serveBuild(a: Api, o: NodeOptions): Promise<{ runId: string; ran: Ran[] }> {
  const node = `${o.nodeIndex}@${hostname()}:${process.pid}`.replace(/[^A-Za-z0-9_.:@-]/g, '-').slice(0, 100);
  const files = await findTests(o.patterns);
  const build = encodeURIComponent(o.build);
  const joined = await steady<Joined>(a, 'POST', `/builds/${build}/nodes`, {
    node,
    node_index: o.nodeIndex,
    node_total: o.nodeTotal,
    slots: o.slots,
    tests: files,
    retries: o.retries,
    labels: o.labels,
    ...(o.pool && { pool: o.pool }),
    ...(o.name && { name: o.name }),
    ...(o.timeoutMs !== undefined && { timeout_ms: o.timeoutMs }),
    ...(o.onlyFailedOf && { only_failed_of: o.onlyFailedOf }),
  });
  process.stderr.write(
    `build ${o.build}: run ${joined.run.id}, ${joined.run.counts.total} file(s) on pool ${joined.run.pool}; node ${o.nodeIndex + 1} of ${o.nodeTotal} (${node}) with ${o.slots} slot(s)\n`,
  );
  if (joined.differs.only_here + joined.differs.only_in_run > 0)
    process.stderr.write(
      `warning: this checkout's files differ from the run's (${joined.differs.only_here} here only, ${joined.differs.only_in_run} in the run only): are the nodes at one commit?\n`,
    );

  const ran: Ran[] = [];
  // pytest files run warm as on the pool's workers: a Python per slot that imported pytest once forks each file.
  const warm = new WarmServerPool({
    env: process.env,
    maxIdle: o.slots,
    onRefused: (what, why) =>
      process.stderr.write(`warning: ${what} cannot run pytest files warm (${why}); for the next minute they run without it\n`),
  });
  const runners: Runners = { test: joined.runners, exit_codes: joined.exit_codes ?? {}, warm: joined.warm ?? {} };
  // Each slot takes a file, runs it, and asks for the next one with its report; an idle slot waits on the
  // coordinator (a long poll) for a file or the run's end. A node that joins after the end runs nothing.
  const slot = async () => {
    let next: Lease | undefined;
    for (;;) {
      if (!next) {
        const answer = await steady<LeaseAnswer>(a, 'POST', `/builds/${build}/leases`, { node, want: 1, wait_ms: IDLE_WAIT_MS });
        if (answer.ended !== undefined) return;
        next = answer.leases[0];
        if (!next) continue;
      }
      const done = await runLease(a, build, node, next, runners, warm, joined.lease_ms);
      ran.push(done.ran);
      next = done.next;
    }
  };
  try {
    if (!['passed', 'failed', 'error', 'cancelled'].includes(joined.run.state)) {
      // Files run in this checkout, so a runner's pytest sessions can start now, one per slot, as a worker's do at boot.
      const ahead = startSessionsAhead(warm, runners, { pool: 'ci', worker_id: hostname() }, { cwd: process.cwd() }, o.slots);
      if (ahead > 0) process.stderr.write(`starting ${ahead} pytest session server(s) ahead of the first files\n`);
      await Promise.all(Array.from({ length: o.slots }, slot));
    }
  } finally {
    warm.close();
  }
  return { runId: joined.run.id, ran };
}

/** Runs one leased file with the pool's runner for its extension and reports the outcome (unless the lease was lost). */
async function runLease(
  a: Api,
  build: string,
  node: string,
  lease: Lease,
  runners: Runners,
  warm: WarmServerPool,
  leaseMs: number,
): Promise<{ ran: Ran; next?: Lease }> {
  const attempt = new AbortController();
  let lost = false;
  let timedOut = false;
  const renew = setInterval(
    () =>
      void call(a, a.coordinator, 'POST', `/builds/${build}/tasks/${encodeURIComponent(lease.task_id)}/renew`, { node, token: lease.token }).catch(
        (err: CliError) => {
          // A lease the coordinator no longer gives this node: stop the file; it runs elsewhere.
          if (err.status === 409 || err.status === 404) {
            lost = true;
            attempt.abort();
          }
        },
      ),
    Math.max(250, Math.floor(leaseMs / 3)),
  );
  const timer = setTimeout(() => {
    timedOut = true;
    attempt.abort();
  }, lease.timeout_ms);
  let report: Outcome;
  try {
    report = await runFile(lease, runners, warm, attempt.signal, () => timedOut);
  } finally {
    clearInterval(renew);
    clearTimeout(timer);
  }
  if (lost) {
    process.stderr.write(`  ~ ${lease.file}: lease lost (this node was too slow to renew it); another node runs it\n`);
    return { ran: { file: lease.file, attempt: lease.attempt, status: 'lost', ms: report.duration_ms } };
  }
  const mark = report.status === 'passed' ? '✓' : '✗';
  const again = lease.attempt > 1 ? ` (attempt ${lease.attempt})` : '';
  process.stderr.write(
    `  ${mark} ${lease.file}${again}  ${(report.duration_ms / 1000).toFixed(2)} s${report.status === 'failed' ? `  ${report.reason}: ${report.message}` : ''}\n`,
  );
  let answer: ReportAnswer;
  try {
    answer = await steady(a, 'POST', `/builds/${build}/tasks/${encodeURIComponent(lease.task_id)}/outcome`, {
      ...report,
      node,
      token: lease.token,
      want: 1,
    });
  } catch (err) {
    if ((err as CliError).status !== 409) throw err;
    process.stderr.write(`  ~ ${lease.file}: its lease ran out before the outcome was recorded; another node runs it\n`);
    return { ran: { file: lease.file, attempt: lease.attempt, status: 'lost', ms: report.duration_ms } };
  }
  return { ran: { file: lease.file, attempt: lease.attempt, status: report.status, ms: report.duration_ms }, next: answer.leases[0] };
}

/** What a node reports of an attempt, before naming itself and its lease. */
type Outcome = Omit<AttemptReport, 'node' | 'token' | 'want'>;

/** The pool's runners by extension and what their exit codes mean, as the coordinator hands them to a node. */
type Runners = Pick<WorkerTemplate['runners'], 'test' | 'exit_codes' | 'warm'>;

/**
 * Runs the file in this checkout as the worker would: argv, its own process group, its tree stopped at the end,
 * the exit code read by the pool's conventions (pytest's 5 and declared codes are skipped, not failed).
 */
async function runFile(lease: Lease, runners: Runners, warm: WarmServerPool, signal: AbortSignal, timedOut: () => boolean): Promise<Outcome> {
  const cwd = process.cwd();
  const runner = runners.test[extensionOf(lease.file)];
  const failed = (reason: AttemptReport['reason'], message: string) => ({
    status: 'failed' as const,
    reason,
    message,
    exit_code: null,
    duration_ms: 0,
    output_tail: '',
  });
  if (!runner) return failed('invalid_task', `the pool has no test runner for "${extensionOf(lease.file)}" files`);
  const real = realPathWithin(cwd, lease.file);
  if (real === undefined) return failed('invalid_task', `test file ${lease.file} does not exist in this checkout (${cwd})`);
  if (real === null) return failed('invalid_task', `test file ${lease.file} resolves to a path outside this checkout`);
  const reportDir = runner.some((x) => x.includes('{junit_file}')) ? makeReportDir() : undefined;
  const junit = reportDir?.report ?? '';
  const argv = fillArgv(runner, {
    task_id: lease.task_id,
    attempt: String(lease.attempt),
    timeout_ms: String(lease.timeout_ms),
    worker_id: hostname(),
    pool: 'ci',
    test_file: lease.file,
    junit_file: junit,
  });
  const cookie = randomBytes(16).toString('hex');
  try {
    const req: RunRequest = {
      argv,
      cwd,
      env: { ...process.env, FLEET_TASK_ID: lease.task_id, FLEET_ATTEMPT: String(lease.attempt), [TASK_COOKIE_VAR]: cookie },
      signal,
      killGraceMs: KILL_GRACE_MS,
      cookie,
    };
    const mode = runsWarm(runners, extensionOf(lease.file));
    const session = mode === 'session' ? { file: lease.file, ...(junit && { junit }) } : undefined;
    const run = mode ? await warm.run(req, session) : await runProcess(req);
    const found: { cases?: TestCase[]; note?: string } = junit ? await readJUnitReport(junit, parseJUnit) : {};
    const output_tail = tail(run.output.text() + (found.note ? `\n[fleet] ${found.note}\n` : ''), OUTPUT_CHARS);
    const duration_ms = Math.round(run.durationMs);
    const cases = found.cases && { cases: found.cases };
    if (timedOut())
      return {
        status: 'failed',
        reason: 'timeout',
        message: `exceeded timeout_ms ${lease.timeout_ms}; its process tree was stopped`,
        exit_code: run.exitCode,
        duration_ms,
        output_tail,
        ...cases,
      };
    const meaning = run.started && !signal.aborted ? exitMeaning(runners, extensionOf(lease.file), run.exitCode) : 'failed';
    if (meaning === 'skipped') {
      const skipped = noTestCases(lease.file, run.durationMs, run.exitCode, found.cases);
      return { status: 'passed', message: '', exit_code: run.exitCode, duration_ms, output_tail, cases: skipped };
    }
    if (meaning === 'passed') return { status: 'passed', message: '', exit_code: run.exitCode, duration_ms, output_tail, ...cases };
    return {
      status: 'failed',
      reason: run.started ? 'test_failed' : 'spawn_failed',
      message: run.started ? `test exited with code ${run.exitCode}` : `runner ${argv[0]} could not be started`,
      exit_code: run.exitCode,
      duration_ms,
      output_tail,
      ...cases,
    };
  } finally {
    if (reportDir) await removeReportDir(reportDir);
  }
}
