import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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
  const entry = join(repoRoot(), 'dist', 'apps', app, 'src', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build" first (npm test builds for you)`);
  return entry;
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
  try {
    // /proc/<pid>/stat: "pid (comm) S ...", where S is the state; comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
