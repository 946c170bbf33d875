import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { type WorkerSettings, WORKER_SETTINGS } from './worker-settings.js';
import type { GuardMessage } from './process-guard.js';
import { CgroupTree, type TaskTree } from '@fleet/exec';
import { guardEntry } from './worker-files.js';

/**
 * How long an untrack may wait to go with the next message. A file's end and the next file's start are a few
 * milliseconds apart; one write (and one wake of the guard) then carries both. Far below any deadline (a lock's
 * safe time, seconds), so a tree's deadline never passes while its untrack waits but in a worker that was about
 * to lose the lock anyway, whose expiry for an untracked tree is ignored (its attempt's processes have ended).
 */
const UNTRACK_DELAY_MS = 20;

/**
 * The worker's side of its guard process (see process-guard.ts): starts it, tells it which process trees
 * the running tasks own and until when each may live, restarts it if it dies (re-telling what it tracked).
 */
@Injectable()
export class ProcessGuard {
  private readonly logger = new Logger(ProcessGuard.name);
  /** Carried by every process any of this worker's tasks starts. */
  readonly workerCookie = randomBytes(16).toString('hex');
  /** This worker's cgroup (tasks get children of it), when the host offers a writable cgroup v2. */
  readonly cgroup: string | undefined;
  private child: ChildProcess | undefined;
  private readonly trees = new Map<string, { tree: TaskTree; until: number }>();
  private readonly expiredListeners: Array<(key: string) => void> = [];
  private stopping = false;
  /** Untracks not sent yet (see UNTRACK_DELAY_MS), and the timer that sends them if nothing else does first. */
  private untracks: string[] = [];
  private untrackTimer: NodeJS.Timeout | undefined;

  constructor(@Inject(WORKER_SETTINGS) private readonly settings: WorkerSettings) {
    const root = settings.cgroup === 'off' ? undefined : settings.cgroup === 'auto' ? CgroupTree.detect() : settings.cgroup;
    this.cgroup = root ? new CgroupTree(root).child(`fleet-${settings.workerId}-${process.pid}`).dir : undefined;
  }

  start(): void {
    const child = spawn(process.execPath, [guardEntry(), this.workerCookie, ...(this.cgroup ? [this.cgroup] : [])], {
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: true,
    });
    child.stdin?.on('error', () => undefined);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const m = JSON.parse(line) as { op: string; key: string };
      // An untracked tree's attempt is over (its untrack may still have been waiting): nothing to tell.
      if (m.op !== 'expired' || !this.trees.has(m.key)) return;
      this.trees.delete(m.key);
      this.logger.warn({ msg: `task ${m.key}: its guard ended its processes (the worker did not confirm the task's lock in time)`, task_id: m.key });
      for (const listener of this.expiredListeners) listener(m.key);
    });
    // Node may emit 'exit' after 'error', or not: whichever comes first starts the next guard, once.
    let ended = false;
    child.on('exit', (code, signal) => {
      if (this.stopping || ended) return;
      ended = true;
      this.logger.error(`process guard exited (${signal ?? code}); starting a new one`);
      this.start();
    });
    // A guard that could not be spawned at all (EAGAIN under a process limit, say): tried again a second later
    // rather than taking the worker down with an unhandled 'error'.
    child.on('error', (err) => {
      if (this.stopping || ended) return;
      ended = true;
      this.logger.error(`process guard could not start (${err.message}); trying again in 1 s`);
      setTimeout(() => {
        if (!this.stopping) this.start();
      }, 1000).unref();
    });
    this.child = child;
    for (const [key, t] of this.trees) this.send({ op: 'track', key, tree: t.tree, ms: t.until - Date.now() });
  }

  onExpired(listener: (key: string) => void): void {
    this.expiredListeners.push(listener);
  }

  /** Sends `m`, after the untracks still waiting (in the order they were made). */
  private send(m?: GuardMessage): void {
    let lines = '';
    for (const key of this.untracks) lines += `${JSON.stringify({ op: 'untrack', key } satisfies GuardMessage)}\n`;
    this.untracks = [];
    clearTimeout(this.untrackTimer);
    this.untrackTimer = undefined;
    if (m) lines += `${JSON.stringify(m)}\n`;
    if (lines !== '') this.child?.stdin?.write(lines);
  }

  /** The guard kills `tree` at `until` (Date.now() scale) unless told a later deadline first. */
  track(key: string, tree: TaskTree, until: number): void {
    this.trees.set(key, { tree, until });
    this.send({ op: 'track', key, tree, ms: until - Date.now() });
  }

  deadline(key: string, until: number): void {
    const t = this.trees.get(key);
    if (!t) return;
    t.until = until;
    this.send({ op: 'deadline', key, ms: until - Date.now() });
  }

  /** The guard forgets `key`'s tree: with the next message, or UNTRACK_DELAY_MS from now. */
  untrack(key: string): void {
    if (!this.trees.delete(key)) return;
    this.untracks.push(key);
    this.untrackTimer ??= setTimeout(() => this.send(), UNTRACK_DELAY_MS);
  }

  /** Closes the guard's stdin: it ends whatever is left (nothing, after a drain) and removes the cgroup. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.send();
    const child = this.child;
    // No pid: it was never spawned, and no 'exit' will come.
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin?.end();
    await exited;
  }
}
