import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { TailBuffer } from './tail-buffer.js';

export interface RunRequest {
  argv: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Aborting stops the whole process tree: SIGTERM, then SIGKILL after `killGraceMs`. */
  signal: AbortSignal;
  killGraceMs: number;
}

export interface RunOutcome {
  /** The program's exit code; 128 + n when signal n ended it (the shell's convention). */
  exitCode: number;
  /** True when the run was stopped by the abort signal. */
  aborted: boolean;
  durationMs: number;
  /** stdout and stderr interleaved, the last 64 KiB. */
  output: TailBuffer;
  /** stdout alone, the last 64 KiB: a benchmark's JSON line is read from here. */
  stdout: TailBuffer;
}

const TAIL_CHARS = 64 * 1024;

/**
 * A tiny guard process sits between the worker and each command. It leads a new process group that
 * the command and everything the command starts belong to, so a timeout can stop the whole tree with
 * one group signal. It also watches its stdin, a pipe from the worker: if the worker dies (even by
 * SIGKILL) the pipe closes and the guard kills its group, so no test process outlives its worker.
 */
const GUARD = `
const { spawn } = require('node:child_process');
const { constants } = require('node:os');
const [cmd, ...args] = JSON.parse(process.argv[1]);
process.on('SIGTERM', () => {});
const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
child.on('error', (e) => { process.stderr.write('cannot start ' + cmd + ': ' + e.message + '\\n'); process.exit(127); });
child.on('exit', (code, sig) => process.exit(code ?? 128 + (constants.signals[sig] || 0)));
process.stdin.on('end', () => { try { process.kill(0, 'SIGKILL'); } catch {} });
process.stdin.resume();
`;

/** Exit code the guard uses when the program could not be started at all (e.g. not found). */
export const EXIT_NOT_STARTED = 127;

const killGroup = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
};

/** Runs a template command as argv (never through a shell) and collects bounded output. */
export function runProcess(req: RunRequest): Promise<RunOutcome> {
  const output = new TailBuffer(TAIL_CHARS);
  const stdout = new TailBuffer(TAIL_CHARS);
  const started = performance.now();
  const [program] = req.argv;
  const argv = program === 'node' ? [process.execPath, ...req.argv.slice(1)] : [...req.argv];
  const child = spawn(process.execPath, ['-e', GUARD, JSON.stringify(argv)], {
    cwd: req.cwd,
    env: req.env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    output.push(s);
    stdout.push(s);
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => output.push(s));
  child.stdin.on('error', () => undefined);

  let aborted = false;
  let escalation: NodeJS.Timeout | undefined;
  const onAbort = () => {
    aborted = true;
    killGroup(child.pid as number, 'SIGTERM');
    escalation = setTimeout(() => killGroup(child.pid as number, 'SIGKILL'), req.killGraceMs);
  };
  if (req.signal.aborted) onAbort();
  else req.signal.addEventListener('abort', onAbort, { once: true });

  return new Promise((resolve) => {
    let exitCode: number | undefined;
    const finish = () => {
      clearTimeout(escalation);
      req.signal.removeEventListener('abort', onAbort);
      resolve({ exitCode: exitCode ?? EXIT_NOT_STARTED, aborted, durationMs: performance.now() - started, output, stdout });
    };
    child.on('error', (err) => {
      output.push(`cannot start the process guard: ${err.message}\n`);
      if (child.pid === undefined) finish();
    });
    child.on('exit', (code, signal) => {
      exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
      // Whatever the command left running in its group goes with it, and its pipes close.
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    });
    child.on('close', finish);
  });
}
