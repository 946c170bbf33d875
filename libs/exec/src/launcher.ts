import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { followJsonLines } from './json-line-child.js';
import { LAUNCHER_SERVER } from './launcher-server.js';

/**
 * What one launched program reports, in order and synchronously as each message is read: its pid (or why it could
 * not start, and nothing more), its output, its exit, the end of its pipes.
 */
export interface LaunchHandlers {
  onStart(pid: number): void;
  onError(why: string): void;
  onOutput(fd: 1 | 2, data: Buffer): void;
  onExit(code: number): void;
  onClosed(): void;
}

/** What the launcher says about one program. */
type ProgramMessage =
  | { id: number; pid: number }
  | { id: number; error: string }
  | { id: number; fd: 1 | 2; data: string }
  | { id: number; exit: number }
  | { id: number; closed: 1 };

type LauncherMessage = { ready: 1; placement: CgroupPlacement; probe: PlacementTimes | null } | { error: string } | ProgramMessage;

/**
 * Each way's time as the launcher took it at its start: over `/bin/true` and the probe's program, the sum of each
 * one's fastest start and wait, in milliseconds.
 */
export type PlacementTimes = Record<CgroupPlacement, number>;

/** Where and with what a launcher times the placements: `in`, a cgroup v2 directory (the attempts' parent). */
export interface PlacementProbe {
  in: string;
  /** A program to time besides `/bin/true` (`argv[0]` an absolute path): one that starts threads, as Node does. */
  argv?: readonly string[];
}

/** How a launcher puts a program in its attempt's cgroup: started there (clone3), or by moving itself there around the spawn. */
export type CgroupPlacement = 'clone3' | 'move';

/** A program the launcher was asked to start: told its pid yet, and which half of its end (exit, pipes) came. */
interface Launched {
  handlers: LaunchHandlers;
  started: boolean;
  half?: 'exit' | 'closed';
}

const START_TIMEOUT_MS = 10_000;

/**
 * A small long-lived Python (launcher-server.ts) that starts programs for the worker with `posix_spawn`, a
 * vfork: a fork of the worker's own 150 MB process costs 5-9 ms on a 2-core VM, where this costs 1-2 ms and keeps
 * the worker's event loop free meanwhile. One per worker, started on first use; it carries `env` (the worker's
 * cookie, so the guard ends it with the worker). Programs start in their own session (process group), folder,
 * environment and cgroup; the worker ends their trees as it ends any attempt's.
 */
export class Launcher {
  private readonly child: ChildProcess;
  private readonly running = new Map<number, Launched>();
  private nextId = 1;
  private dead: string | undefined;
  private cgroups: CgroupPlacement = 'move';
  private timed: PlacementTimes | undefined;

  private constructor(python: string, home: string, env: NodeJS.ProcessEnv, probe: PlacementProbe | undefined) {
    const args = ['-c', LAUNCHER_SERVER, home, ...(probe ? [probe.in, ...(probe.argv ?? [])] : [])];
    this.child = spawn(python, args, { env, cwd: '/', detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** The Python a launcher runs on: Debian's, else the PATH's `python3` (3.8 or later: posix_spawn's setsid). */
  static python(env: NodeJS.ProcessEnv = process.env): string | undefined {
    if (existsSync('/usr/bin/python3')) return '/usr/bin/python3';
    for (const dir of (env.PATH ?? '').split(':')) if (dir && existsSync(`${dir}/python3`)) return `${dir}/python3`;
    return undefined;
  }

  /**
   * Starts one and waits for it to be ready; rejects with the reason it is not. With `probe`, where both
   * placements work, the launcher times them and keeps the faster (see launcher-server.ts;
   * `FLEET_LAUNCHER_CLONE3=on` or `off` in `env` decides instead).
   */
  static start(python: string, home: string, env: NodeJS.ProcessEnv, probe?: PlacementProbe): Promise<Launcher> {
    return new Launcher(python, home, env, probe).listen();
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  /** How it puts programs in their cgroups (see launcher-server.ts): 'clone3' where the kernel allows it. */
  get placement(): CgroupPlacement {
    return this.cgroups;
  }

  /** What each placement took when the launcher timed both (undefined: it did not). */
  get probe(): PlacementTimes | undefined {
    return this.timed;
  }

  private listen(): Promise<Launcher> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.died('it did not get ready in time');
        this.child.stdin?.end();
        reject(new Error(`the launcher did not get ready within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      followJsonLines<LauncherMessage>(
        this.child,
        (m) => {
          if ('ready' in m) {
            clearTimeout(timer);
            this.cgroups = m.placement;
            this.timed = m.probe ?? undefined;
            resolve(this);
          } else if (!('id' in m)) {
            // It cannot start programs here (it exits after saying why).
            clearTimeout(timer);
            this.died(m.error);
            reject(new Error(m.error));
          } else this.handle(m);
        },
        (why) => {
          clearTimeout(timer);
          this.died(`the launcher ${why}`);
          reject(new Error(`the launcher ${why}`));
        },
      );
    });
  }

  private handle(m: ProgramMessage): void {
    const p = this.running.get(m.id);
    if (!p) return;
    if ('pid' in m) {
      p.started = true;
      p.handlers.onStart(m.pid);
    } else if ('error' in m) {
      this.running.delete(m.id);
      p.handlers.onError(m.error);
    } else if ('data' in m) p.handlers.onOutput(m.fd, Buffer.from(m.data, 'base64'));
    else if ('exit' in m) {
      p.handlers.onExit(m.exit);
      this.ended(m.id, p, 'exit');
    } else {
      p.handlers.onClosed();
      this.ended(m.id, p, 'closed');
    }
  }

  /**
   * Starts `argv` (`argv[0]` an absolute path); `handlers` hear the rest. If the launcher dies meanwhile, a program
   * not yet started gets `onError` (and `alive` is false); a started one's exit is reported as 137, with the reason
   * in its output.
   */
  launch(req: { argv: readonly string[]; cwd: string; env: NodeJS.ProcessEnv; cgroup?: string }, handlers: LaunchHandlers): void {
    if (this.dead !== undefined) {
      handlers.onError(this.dead);
      return;
    }
    const id = this.nextId++;
    this.running.set(id, { handlers, started: false });
    this.child.stdin?.write(`${JSON.stringify({ id, argv: req.argv, cwd: req.cwd, env: req.env, cgroup: req.cgroup ?? null })}\n`);
  }

  /** A program is done with once both its exit and the end of its pipes are told (in either order). */
  private ended(id: number, p: Launched, what: 'exit' | 'closed'): void {
    if (p.half !== undefined && p.half !== what) this.running.delete(id);
    else p.half = what;
  }

  private died(why: string): void {
    if (this.dead !== undefined) return;
    this.dead = why;
    for (const { handlers, started, half } of this.running.values()) {
      if (!started) {
        handlers.onError(why);
        continue;
      }
      if (half === undefined) handlers.onOutput(2, Buffer.from(`\n[fleet] ${why}\n`));
      if (half !== 'exit') handlers.onExit(137);
      if (half !== 'closed') handlers.onClosed();
    }
    this.running.clear();
  }

  /** Ends it (stdin's end); programs it started run on, as the worker's own children would. */
  close(): void {
    this.child.stdin?.end();
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }
}
