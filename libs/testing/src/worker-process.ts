import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@fleet/config';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A real app process started from `dist`, as the resource manager or a person would start it. */
export interface AppProcess {
  pid: number;
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  exited: Promise<ExitStatus>;
  /** Sends `signal` (SIGTERM by default) and resolves with the exit status. */
  stop(signal?: NodeJS.Signals): Promise<ExitStatus>;
}

export function distEntry(app: string): string {
  // The bundle (scripts/bundle-apps.mjs) where the build made one: what the start scripts and the resource manager
  // run, and quicker to start; else the compiled module.
  const src = join(repoRoot(), 'dist', 'apps', app, 'src');
  const bundle = join(src, 'main.bundle.mjs');
  if (existsSync(bundle)) return bundle;
  const entry = join(src, 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build" first (npm test builds for you)`);
  return entry;
}

/**
 * Env that preloads module-loads-probe.mjs into a process started with it: the process lists every file it loads
 * from node_modules in `dir/<pid>` (see packagesLoaded).
 */
export function moduleLoadsProbe(dir: string): Record<string, string> {
  return { NODE_OPTIONS: `--import ${join(repoRoot(), 'libs', 'testing', 'src', 'module-loads-probe.mjs')}`, FLEET_LOADS_DIR: dir };
}

/** The packages (`name` or `@scope/name`) a process started with moduleLoadsProbe(dir) loaded files of, sorted. */
export function packagesLoaded(dir: string, pid: number): string[] {
  const log = join(dir, String(pid));
  if (!existsSync(log)) return [];
  const names = readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((path) => {
      const parts = path.slice(path.lastIndexOf('/node_modules/') + '/node_modules/'.length).split('/');
      return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? '');
    });
  return [...new Set(names)].sort();
}

/** Test-speed defaults: quick heartbeats, short locks so a killed worker's task is recovered in seconds. */
export const FAST_WORKER_ENV: Record<string, string> = {
  WORKER_HEARTBEAT_MS: '200',
  WORKER_LOCK_MS: '2000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  WORKER_KILL_GRACE_MS: '500',
};

export function startApp(app: string, args: string[], env: Record<string, string>): AppProcess {
  const child = spawn(process.execPath, [distEntry(app), ...args], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<ExitStatus>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    pid: child.pid as number,
    child,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface WorkerOptions {
  pool: string;
  prefix: string;
  configDir: string;
  redisUrl: string;
  id?: string;
  concurrency?: number;
  env?: Record<string, string>;
}

export function startWorker(o: WorkerOptions): AppProcess & { id: string } {
  const id = o.id ?? `w-${Math.random().toString(36).slice(2, 8)}`;
  const args = ['--pool', o.pool, '--id', id, ...(o.concurrency ? ['--concurrency', String(o.concurrency)] : [])];
  const proc = startApp('worker', args, { REDIS_URL: o.redisUrl, FLEET_PREFIX: o.prefix, CONFIG_DIR: o.configDir, ...FAST_WORKER_ENV, ...o.env });
  return { ...proc, id };
}

/** Whether `pid` is a running process. A zombie (dead, not yet reaped by its parent) is not. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const st = procStat(pid);
  return st === undefined || st.state !== 'Z';
}

/** A process's state letter and parent as /proc/<pid>/stat gives them ("pid (comm) S ppid ...": comm may hold spaces and parentheses). */
function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Every process /proc shows: its state, parent and command line (read once). */
function listProcesses(): Map<number, { state: string; ppid: number; cmd: string }> {
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    // no /proc: every process shows as gone
  }
  const procs = new Map<number, { state: string; ppid: number; cmd: string }>();
  for (const pid of entries.filter((e) => /^\d+$/.test(e)).map(Number)) {
    const st = procStat(pid);
    if (!st) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      // exited meanwhile
    }
    procs.set(pid, { ...st, cmd });
  }
  return procs;
}

/** The live children of `pid`, with their command lines. */
export function childProcesses(pid: number): Array<{ pid: number; cmd: string }> {
  return [...listProcesses()].filter(([, p]) => p.ppid === pid && p.state !== 'Z').map(([child, p]) => ({ pid: child, cmd: p.cmd }));
}

/**
 * For a failure message: each process's state, parent and command line as /proc shows them, and the children of
 * each (one level), so a test that waited on a process in vain says what was there. /proc is read once.
 */
export function describeProcesses(pids: readonly number[]): string {
  const procs = listProcesses();
  const lines: string[] = [];
  for (const pid of pids) {
    const p = procs.get(pid);
    lines.push(p ? `${pid} ${p.state} ppid ${p.ppid}: ${p.cmd.slice(0, 160)}` : `${pid}: gone`);
    for (const [c, cp] of procs) if (cp.ppid === pid) lines.push(`  child ${c} ${cp.state}: ${cp.cmd.slice(0, 160)}`);
  }
  return lines.join('\n');
}
