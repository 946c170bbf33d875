import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ownCgroupDir, type RunOutcome, type RunRequest, TASK_COOKIE_VAR, type TaskTree, WarmServerPool } from '@fleet/exec';
import { cpuTemplate } from './config-dir.js';

/**
 * A Python with pytest: Debian's, else the one on PATH; throws with the apt line when there is none. Debian's
 * first: a `python3` on PATH may be a version manager's shim (pyenv's is a shell script that costs 0.3 s a start).
 */
export function pythonWithPytest(): string {
  for (const python of ['/usr/bin/python3', 'python3']) if (spawnSync(python, ['-m', 'pytest', '--version']).status === 0) return python;
  throw new Error("no python3 with pytest: install Debian's python3-pytest (apt-get install -y python3-pytest)");
}

/**
 * A pytest file whose test leaves two processes behind and passes: one it forks (which leaves its session) and one
 * it starts in a session of its own; their PIDs go to `forkedPidFile` and `execdPidFile`.
 */
export function leakingPytestFile(forkedPidFile: string, execdPidFile: string): string {
  return [
    'import os, subprocess, time',
    'def test_leaves_processes():',
    '    pid = os.fork()',
    '    if pid == 0:',
    '        os.setsid()',
    '        time.sleep(300)',
    '        os._exit(0)',
    `    open(${JSON.stringify(forkedPidFile)}, "w").write(str(pid))`,
    '    p = subprocess.Popen(["setsid", "sleep", "300"], start_new_session=True)',
    `    open(${JSON.stringify(execdPidFile)}, "w").write(str(p.pid))`,
  ].join('\n');
}

/** A pytest file whose test ignores SIGTERM, writes `startedFile`, then sleeps for five minutes. */
export function hangingPytestFile(startedFile: string): string {
  return [
    'import signal, time',
    'def test_hangs():',
    '    signal.signal(signal.SIGTERM, signal.SIG_IGN)',
    `    open(${JSON.stringify(startedFile)}, "w").write("1")`,
    '    time.sleep(300)',
  ].join('\n');
}

/**
 * A runProcess-style request (libs/exec) for `argv` in `cwd`, with a cookie of its own in its environment and a
 * 300 ms kill grace: what the runner tests run files with.
 */
export function attemptRequest(
  argv: string[],
  cwd: string,
  opts: { signal?: AbortSignal; cgroupParent?: string; env?: Record<string, string>; onStart?: (tree: TaskTree) => void } = {},
): RunRequest {
  const cookie = randomBytes(16).toString('hex');
  return {
    argv,
    cwd,
    env: { ...process.env, ...opts.env, [TASK_COOKIE_VAR]: cookie },
    signal: opts.signal ?? new AbortController().signal,
    killGraceMs: 300,
    cookie,
    ...(opts.onStart && { onStart: opts.onStart }),
    ...(opts.cgroupParent && { cgroupParent: opts.cgroupParent }),
  };
}

/** A new temporary folder for test files, and a function that writes one there (its folders made as needed). */
export function testFolder(prefix: string): { dir: string; file: (name: string, text: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    file: (name, text) => {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), text);
    },
  };
}

/** `python -m pytest` quietly and without its cache folder (files of one folder run at once would race on it). */
export const PYTEST_QUIET: readonly string[] = ['-m', 'pytest', '-q', '-p', 'no:cacheprovider'];

/** A one-slot pool (tasks asking for `capability`) whose pytest files, with JUnit, run in one pytest session per slot. */
export function pytestSessionTemplate(python: string, capability: string): Record<string, unknown> {
  return cpuTemplate({
    concurrency: 1,
    capabilities: [capability],
    runners: { test: { '.py': [python, ...PYTEST_QUIET, '--junitxml={junit_file}', '{test_file}'] }, warm: { '.py': 'session' } },
  });
}

/**
 * What the session servers' specs drive: a pool of servers (two idle at most, the test's cgroup as home), requests
 * in `dir` that record each attempt's first process and tree (cleared by `reset`), and `inSession`, which runs a
 * file in a session server (`argvFor` builds its command, with a JUnit report at `junit` when given).
 */
export function sessionHarness(dir: string, argvFor: (test: string, junit?: string, ...extra: string[]) => string[]) {
  /** The attempts' first processes, in order: in session mode, the server's pid each time. */
  const firstPids: number[] = [];
  /** The attempts' trees, in order. */
  const trees: TaskTree[] = [];
  const request = (argv: string[], opts: Parameters<typeof attemptRequest>[2] = {}): RunRequest =>
    attemptRequest(argv, dir, {
      onStart: (tree) => {
        firstPids.push(tree.pgid);
        trees.push(tree);
      },
      ...opts,
    });
  const pool = new WarmServerPool({ env: process.env, maxIdle: 2, home: ownCgroupDir() });
  const inSession = (test: string, junit?: string, opts: Parameters<typeof request>[1] = {}, ...extra: string[]): Promise<RunOutcome> =>
    pool.run(request(argvFor(test, junit, ...extra), opts), { file: test, ...(junit && { junit }) });
  const reset = () => {
    firstPids.length = 0;
    trees.length = 0;
  };
  return { firstPids, trees, request, pool, inSession, reset };
}
