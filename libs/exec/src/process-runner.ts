import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { argvInCgroup, CgroupTree, forkInto, ownCgroupDir, signalTree, type TaskTree } from './process-tree.js';
import { TailBuffer } from './tail-buffer.js';
import type { Launcher } from './launcher.js';

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
  /** Starts the program through this launcher (a vfork from a small process) while it is alive; else spawns it. */
  launcher?: Launcher;
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

export const TAIL_CHARS = 64 * 1024;
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
  if (req.launcher?.alive) return runLaunched(req, req.launcher, [program, ...args], cgroup, { output, stdout, started, startedAt });
  // Into the attempt's cgroup by moving this process there while it forks (no shell to `exec` first), where this
  // process's own group is known; else through argvInCgroup's shell.
  const home = cgroup ? ownCgroupDir() : undefined;
  const argv = cgroup && !home ? argvInCgroup(cgroup.dir, [program, ...args]) : [program, ...args];
  const start = () => spawn(argv[0], argv.slice(1), { cwd: req.cwd, env: req.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const child = cgroup && home ? forkInto(cgroup.dir, home, start) : start();
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    output.push(s);
    stdout.push(s);
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => output.push(s));

  const tree: TaskTree | undefined =
    child.pid === undefined ? undefined : { pgid: child.pid, cookie: req.cookie, startedAt, ...(cgroup && { cgroup: cgroup.dir }) };
  if (tree) req.onStart?.(tree);

  return new Promise((resolvePromise) => {
    const end = attemptEnd(
      req,
      cgroup,
      { output, stdout, started },
      () => tree,
      resolvePromise,
      () => {
        child.stdout.destroy();
        child.stderr.destroy();
      },
    );
    child.on('error', (err) => {
      output.push(`cannot start ${name}: ${err.message}\n`);
      if (child.pid === undefined) end.finish(127, false);
    });
    child.on('exit', (code, signal) => {
      const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
      const closed = child.stdout.closed && child.stderr.closed;
      if (!closed) child.on('close', () => end.finish(exitCode));
      end.exited(exitCode, closed);
    });
  });
}

/** runProcess through a launcher: the same outcome, tree, abort and end, from its messages instead of a child's events. */
function runLaunched(
  req: RunRequest,
  launcher: Launcher,
  argv: string[],
  cgroup: CgroupTree | undefined,
  at: { output: TailBuffer; stdout: TailBuffer; started: number; startedAt: number },
): Promise<RunOutcome> {
  const { output, stdout } = at;
  const decoders = [new StringDecoder('utf8'), new StringDecoder('utf8')];
  let tree: TaskTree | undefined;
  return new Promise((resolvePromise) => {
    let closed = false;
    let exited: number | undefined;
    const end = attemptEnd(req, cgroup, at, () => tree, resolvePromise);
    launcher.launch(
      { argv, cwd: req.cwd, env: req.env, ...(cgroup && { cgroup: cgroup.dir }) },
      {
        onStart: (pid) => {
          tree = { pgid: pid, cookie: req.cookie, startedAt: at.startedAt, ...(cgroup && { cgroup: cgroup.dir }) };
          req.onStart?.(tree);
          end.stop.treeKnown();
        },
        onError: (why) => {
          // The launcher ended before it started this program: the worker starts it itself instead.
          if (!launcher.alive) end.handOver(() => runProcess({ ...req, launcher: undefined }));
          else {
            output.push(`cannot start ${req.argv[0]}: ${why}\n`);
            end.finish(127, false);
          }
        },
        onOutput: (fd, data) => {
          // Decoded per stream, so a character split across two reads stays whole.
          const s = decoders[fd - 1].write(data);
          output.push(s);
          if (fd === 1) stdout.push(s);
        },
        // Negative: the signal that ended it, as 128 + n (the shell's convention, as a spawned child's is).
        onExit: (code) => end.exited((exited = code < 0 ? 128 - code : code), closed),
        onClosed: () => {
          closed = true;
          if (exited !== undefined) end.finish(exited);
        },
      },
    );
  });
}

/**
 * The end of one attempt, however it was started: the abort (stopOnAbort), and one outcome, whichever comes first
 * of the program's end, the abort's give-up, or a failure to start. `release` lets go of what the start held.
 */
function attemptEnd(
  req: RunRequest,
  cgroup: CgroupTree | undefined,
  at: { output: TailBuffer; stdout: TailBuffer; started: number },
  tree: () => TaskTree | undefined,
  resolve: (outcome: RunOutcome | Promise<RunOutcome>) => void,
  release?: () => void,
) {
  let done = false;
  let drain: NodeJS.Timeout | undefined;
  const close = () => {
    if (done) return false;
    done = true;
    clearTimeout(drain);
    stop.dispose();
    release?.();
    return true;
  };
  const finish = (exitCode: number, startedOk = true) => {
    if (!close()) return;
    if (cgroup) removeWhenEmpty(cgroup);
    resolve({
      exitCode,
      started: startedOk,
      aborted: stop.aborted,
      durationMs: performance.now() - at.started,
      output: at.output,
      stdout: at.stdout,
    });
  };
  // Whatever the pipes do, the attempt is over shortly after the SIGKILL.
  const stop = stopOnAbort(req, tree, () => finish(137));
  return {
    stop,
    finish,
    /** The program exited: whatever it left running goes with it; the run ends once its pipes close, or after DRAIN_MS. */
    exited(exitCode: number, pipesClosed: boolean) {
      const t = tree();
      if (t) signalTree(t, 'SIGKILL', false);
      if (pipesClosed) finish(exitCode);
      else drain = setTimeout(() => finish(exitCode), DRAIN_MS);
    },
    /** Another run takes over (it makes and removes the same cgroup). */
    handOver(run: () => Promise<RunOutcome>) {
      if (close()) resolve(run());
    },
  };
}

/** What `stopOnAbort` tells and takes. */
export interface AbortStop {
  readonly aborted: boolean;
  /** Call when the tree becomes known: if the abort came first, it gets its SIGTERM now. */
  treeKnown(): void;
  /** Call when the run has ended: the timers and the listener go. */
  dispose(): void;
}

/**
 * A run's answer to its request's abort (shared by cold runs and warm files): SIGTERM to its tree (once there is
 * one), SIGKILL after `killGraceMs`, and `giveUp` a second later whatever the program does.
 */
export function stopOnAbort(req: RunRequest, tree: () => TaskTree | undefined, giveUp: () => void): AbortStop {
  let aborted = false;
  const timers: NodeJS.Timeout[] = [];
  const signal = (s: NodeJS.Signals) => {
    const t = tree();
    if (t) signalTree(t, s);
  };
  const onAbort = () => {
    aborted = true;
    signal('SIGTERM');
    timers.push(
      setTimeout(() => signal('SIGKILL'), req.killGraceMs),
      setTimeout(giveUp, req.killGraceMs + 1000),
    );
  };
  if (req.signal.aborted) onAbort();
  else req.signal.addEventListener('abort', onAbort, { once: true });
  return {
    get aborted() {
      return aborted;
    },
    treeKnown: () => {
      if (aborted) signal('SIGTERM');
    },
    dispose: () => {
      for (const t of timers) clearTimeout(t);
      req.signal.removeEventListener('abort', onAbort);
    },
  };
}

/** The attempt's cgroup goes once its last process has exited (SIGKILL is quick but not instant). */
export function removeWhenEmpty(cgroup: CgroupTree, tries = 40): void {
  if (cgroup.remove() || tries === 0) return;
  setTimeout(() => removeWhenEmpty(cgroup, tries - 1), 25).unref();
}
