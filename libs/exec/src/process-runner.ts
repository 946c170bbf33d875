import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { argvInCgroup, CgroupTree, signalTree, type TaskTree } from './process-tree.js';
import { TailBuffer } from './tail-buffer.js';

export interface RunRequest {
  argv: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Aborting stops the whole tree: SIGTERM, then SIGKILL after `killGraceMs`; the run ends by then. */
  signal: AbortSignal;
  killGraceMs: number;
  /** Marks every process of this attempt (see process-tree.ts). */
  cookie: string;
  /** A cgroup v2 directory to create this attempt's group under, when the host offers one. */
  cgroupParent?: string;
  /** Called once the program is running, with what it takes to end its tree (the guard tracks it). */
  onStart?(tree: TaskTree): void;
}

export interface RunOutcome {
  /** The program's exit code; 128 + n when signal n ended it (the shell's convention). */
  exitCode: number;
  /** False when the program could not be started at all (not found, not executable). */
  started: boolean;
  /** True when the run was stopped by the abort signal. */
  aborted: boolean;
  durationMs: number;
  /** stdout and stderr interleaved, the last 64 KiB. */
  output: TailBuffer;
  /** stdout alone, the last 64 KiB: a benchmark's JSON line is read from here. */
  stdout: TailBuffer;
}

const TAIL_CHARS = 64 * 1024;
/** After the program exits and its tree is killed, how long to wait for the pipes to drain. */
const DRAIN_MS = 250;

/** Where `program` is, the way a shell's PATH lookup finds it; undefined when it is nowhere runnable. */
export function resolveProgram(program: string, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  const runnable = (path: string) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (program.includes('/')) {
    const path = isAbsolute(program) ? program : resolve(cwd, program);
    return runnable(path) ? path : undefined;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && runnable(join(dir, program))) return join(dir, program);
  }
  return undefined;
}

/**
 * Runs a template command as argv (never through a shell) in a session and process group of its own, marked
 * with the attempt's cookie (and inside its own cgroup when there is one). The run ends when the program
 * exits: whatever it left behind is killed at once, so no descendant holding a pipe open can keep an attempt
 * from ending; on abort it ends at the latest `killGraceMs` (plus a moment) after the signal.
 */
export function runProcess(req: RunRequest): Promise<RunOutcome> {
  const output = new TailBuffer(TAIL_CHARS);
  const stdout = new TailBuffer(TAIL_CHARS);
  const started = performance.now();
  const startedAt = Date.now();
  const [name, ...args] = req.argv;
  const program = name === 'node' ? process.execPath : resolveProgram(name, req.env, req.cwd);
  if (program === undefined) {
    output.push(`cannot start ${name}: not found or not executable (PATH=${req.env.PATH ?? ''})\n`);
    return Promise.resolve({ exitCode: 127, started: false, aborted: false, durationMs: performance.now() - started, output, stdout });
  }
  const cgroup = req.cgroupParent ? new CgroupTree(req.cgroupParent).child(`t-${req.cookie}`) : undefined;
  const argv = cgroup ? argvInCgroup(cgroup.dir, [program, ...args]) : [program, ...args];
  const child = spawn(argv[0], argv.slice(1), { cwd: req.cwd, env: req.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    output.push(s);
    stdout.push(s);
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => output.push(s));

  const tree: TaskTree | undefined =
    child.pid === undefined ? undefined : { pgid: child.pid, cookie: req.cookie, startedAt, ...(cgroup && { cgroup: cgroup.dir }) };
  if (tree) req.onStart?.(tree);

  return new Promise((resolvePromise) => {
    let aborted = false;
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (exitCode: number, startedOk = true) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      req.signal.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      if (cgroup) removeWhenEmpty(cgroup);
      resolvePromise({ exitCode, started: startedOk, aborted, durationMs: performance.now() - started, output, stdout });
    };
    const onAbort = () => {
      aborted = true;
      if (tree) signalTree(tree, 'SIGTERM');
      timers.push(
        setTimeout(() => tree && signalTree(tree, 'SIGKILL'), req.killGraceMs),
        // Whatever the pipes do, the attempt is over shortly after the SIGKILL.
        setTimeout(() => finish(137), req.killGraceMs + 1000),
      );
    };
    if (req.signal.aborted) onAbort();
    else req.signal.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err) => {
      output.push(`cannot start ${name}: ${err.message}\n`);
      if (child.pid === undefined) finish(127, false);
    });
    child.on('exit', (code, signal) => {
      const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
      // Whatever the program left running goes with it; then the pipes close (or are cut after a moment).
      if (tree) signalTree(tree, 'SIGKILL');
      if (child.stdout.closed && child.stderr.closed) finish(exitCode);
      else {
        child.on('close', () => finish(exitCode));
        timers.push(setTimeout(() => finish(exitCode), DRAIN_MS));
      }
    });
  });
}

/** The attempt's cgroup goes once its last process has exited (SIGKILL is quick but not instant). */
function removeWhenEmpty(cgroup: CgroupTree, tries = 40): void {
  if (cgroup.remove() || tries === 0) return;
  setTimeout(() => removeWhenEmpty(cgroup, tries - 1), 25).unref();
}
