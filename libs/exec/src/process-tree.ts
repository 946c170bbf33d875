import { mkdirSync, openSync, readdirSync, readFileSync, readSync, rmdirSync, writeFileSync, existsSync, accessSync, constants } from 'node:fs';
import { join } from 'node:path';

/**
 * Finding and ending every process a task started, however it tried to leave: its process group (the
 * command leads a group of its own), an environment cookie every descendant inherits (found again in
 * `/proc/<pid>/environ`, as Jenkins' process-tree killer does with BUILD_ID: it catches `setsid`,
 * `detached: true` and `start_new_session=True`), and a cgroup v2 where the host offers a writable one
 * (it catches even a process that clears its environment). Used by the worker and by its guard.
 */

/** Environment variable that marks every process of one task attempt. */
export const TASK_COOKIE_VAR = 'FLEET_TASK_COOKIE';
/** Environment variable that marks every process any task of one worker started. */
export const WORKER_COOKIE_VAR = 'FLEET_WORKER_COOKIE';

/** Whether a process with this pid exists (EPERM: it does, and belongs to another user). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}

/**
 * Which PIDs may belong to an attempt started at `startedAt` (Date.now()) whose first process is `firstPid`:
 * Linux hands out PIDs in increasing order, wrapping at `pid_max`, so everything the attempt started has a PID
 * in the cyclic range from `firstPid` to the last one handed out (`/proc/sys/kernel/ns_last_pid`). That holds
 * while the counter cannot have gone round once since the start: assuming at most 100 new processes per
 * millisecond, for attempts younger than `pid_max` ÷ 100 ms (42 s on most hosts, 0.33 s with a 32,768 limit).
 * Older attempts, or a host without those files, get every PID.
 */
export interface PidScope {
  firstPid: number;
  startedAt: number;
}

const FORKS_PER_MS = 100;
let pidMax: number | null | undefined;

/** A PID (or PID count) as a `/proc/sys/kernel` file holds it, or null. */
function pidOf(text: string): number | null {
  const n = Number(text.trim());
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

function readPidFile(path: string): number | null {
  try {
    return pidOf(readFileSync(path, 'latin1'));
  } catch {
    return null;
  }
}

/** The cyclic range of PIDs to read (`first` to `last`, wrapping past `pid_max`), or undefined for all of them. */
function pidBounds(scope: PidScope | undefined): { first: number; last: number } | undefined {
  if (!scope) return undefined;
  pidMax ??= readPidFile('/proc/sys/kernel/pid_max');
  if (pidMax === null || (Date.now() - scope.startedAt) * FORKS_PER_MS >= pidMax) return undefined;
  const last = lastPid();
  if (last === null) return undefined;
  return { first: scope.firstPid, last };
}

/**
 * `ns_last_pid`, kept open: it is read at every attempt's end, and a read at offset 0 of the open file gives the
 * current value (6 µs here, against 45-70 µs to open, read and close it each time). Null where it cannot be opened.
 */
let lastPidFile: number | null | undefined;
const lastPidBuffer = Buffer.alloc(24);

/** The last PID Linux handed out in this PID namespace, or null where that cannot be read. */
function lastPid(): number | null {
  if (lastPidFile === undefined) {
    try {
      lastPidFile = openSync('/proc/sys/kernel/ns_last_pid', 'r');
    } catch {
      lastPidFile = null;
    }
  }
  if (lastPidFile === null) return null;
  try {
    return pidOf(lastPidBuffer.toString('latin1', 0, readSync(lastPidFile, lastPidBuffer, 0, lastPidBuffer.length, 0)));
  } catch {
    return null;
  }
}

/**
 * The PID Linux hands out next (one past `/proc/sys/kernel/ns_last_pid`), or undefined where that cannot be read:
 * read before an attempt starts work in a process that already runs, it is the `firstPid` of that attempt's scope.
 */
export function nextPid(): number | undefined {
  const last = lastPid();
  return last === null ? undefined : last + 1;
}

/** Whether `pid` lies in the cyclic range `first` to `last` (PIDs wrap past `pid_max`). */
export function pidInRange(pid: number, { first, last }: { first: number; last: number }): boolean {
  return last >= first ? pid >= first && pid <= last : pid >= first || pid <= last;
}

/** Up to this many PIDs in scope are read one by one, without listing `/proc` (its listing costs more). */
const PIDS_READ_DIRECTLY = 256;

/**
 * PIDs of processes whose environment holds `name=value` (never this process). Linux only; elsewhere none.
 * With a `scope`, only the PIDs that attempt can have had are read (see PidScope): a few rather than every one.
 */
export function pidsWithCookie(name: string, value: string, scope?: PidScope, except?: number): number[] {
  const bounds = pidBounds(scope);
  let entries: string[];
  const direct = bounds !== undefined && bounds.last >= bounds.first && bounds.last - bounds.first < PIDS_READ_DIRECTLY;
  if (direct) {
    // A few PIDs handed out since the attempt began (the usual case): each is read, whether it exists or not.
    entries = Array.from({ length: bounds.last - bounds.first + 1 }, (_, i) => String(bounds.first + i));
  } else {
    try {
      entries = readdirSync('/proc');
    } catch {
      return [];
    }
  }
  // Cookies are random (128 bits), so finding `name=value` anywhere in the environment is a match.
  const needle = Buffer.from(`${name}=${value}`);
  const found: number[] = [];
  for (const entry of entries) {
    const c = entry.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(entry);
    if (pid === process.pid || pid === except || (bounds && !pidInRange(pid, bounds))) continue;
    try {
      // Read one by one, a PID may be a thread's: its environment is its process's, and signalling it signals
      // that whole process (a warm server whose thread started after the file did). Only processes count, as
      // in /proc's listing: a thread's process is found by its own PID when it is in scope.
      if (readFileSync(`/proc/${entry}/environ`).indexOf(needle) >= 0 && (!direct || isProcess(pid))) found.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** Whether `pid` is a process (a thread group's leader), not another thread of one. */
function isProcess(pid: number): boolean {
  const tgid = /^Tgid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1];
  return Number(tgid) === pid;
}

/** Signals every process carrying the cookie; returns how many were signalled. */
export function signalCookie(name: string, value: string, signal: NodeJS.Signals, scope?: PidScope, except?: number): number {
  let n = 0;
  for (const pid of pidsWithCookie(name, value, scope, except)) {
    try {
      process.kill(pid, signal);
      n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

/**
 * cgroup v2 containment. `root` is a writable cgroup2 directory (a worker gets `root/fleet-<worker>`, each
 * attempt a child of it); `cgroup.kill` ends every process in a group and its children at once.
 */
export class CgroupTree {
  constructor(readonly dir: string) {}

  /** A writable cgroup2 directory with `cgroup.kill` (kernel 5.14+), or undefined. */
  static detect(candidates = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']): string | undefined {
    for (const dir of candidates) {
      try {
        if (!existsSync(join(dir, 'cgroup.procs')) || !existsSync(join(dir, 'cgroup.controllers'))) continue;
        accessSync(dir, constants.W_OK);
        const probe = join(dir, `fleet-probe-${process.pid}`);
        mkdirSync(probe);
        const killable = existsSync(join(probe, 'cgroup.kill'));
        rmdirSync(probe);
        if (killable) return dir;
      } catch {
        // not cgroup2, or not writable
      }
    }
    return undefined;
  }

  child(name: string): CgroupTree {
    const dir = join(this.dir, name);
    mkdirSync(dir, { recursive: true });
    return new CgroupTree(dir);
  }

  pids(): number[] {
    try {
      return readFileSync(join(this.dir, 'cgroup.procs'), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map(Number);
    } catch {
      return [];
    }
  }

  /**
   * Whether a process is in this group or below (`cgroup.events`), or undefined when that cannot be read. Reading
   * it takes none of the kernel's cgroup locks, where writing `cgroup.kill` waits on them while other attempts'
   * processes join or leave their groups.
   */
  populated(): boolean | undefined {
    try {
      return /^populated 1$/m.test(readFileSync(join(this.dir, 'cgroup.events'), 'utf8'));
    } catch {
      return undefined;
    }
  }

  /**
   * SIGKILL to every process in this group and below. An empty group is left alone: nothing can join it but by
   * a move from outside (a process in it, which could fork, would make it populated).
   */
  kill(): void {
    if (this.populated() === false) return;
    try {
      writeFileSync(join(this.dir, 'cgroup.kill'), '1');
    } catch {
      // removed already
    }
  }

  signal(signal: NodeJS.Signals): void {
    for (const pid of this.pids()) {
      try {
        process.kill(pid, signal);
      } catch {
        // exited meanwhile
      }
    }
  }

  /** Removes the group (and empty children) once it is empty; false while processes remain. */
  remove(): boolean {
    try {
      // Most groups have no children: one rmdir, no listing of the group's many interface files.
      rmdirSync(this.dir);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    }
    try {
      for (const entry of readdirSync(this.dir, { withFileTypes: true })) {
        if (entry.isDirectory()) new CgroupTree(join(this.dir, entry.name)).remove();
      }
      rmdirSync(this.dir);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * The argv that starts `argv` inside `cgroup`: a POSIX shell moves itself into the group, then `exec`s the
 * program, so no descendant can be forked outside it. The task's values stay argv elements (`"$@"`), never
 * shell text. The fallback of `forkInto` (a second `exec` per attempt: about 2 ms on a slow 2-core machine).
 */
export function argvInCgroup(cgroupDir: string, argv: readonly string[]): string[] {
  return ['/bin/sh', '-c', 'echo 0 > "$0/cgroup.procs" && exec "$@"', cgroupDir, ...argv];
}

let ownCgroup: { dir: string | undefined } | undefined;

/**
 * This process's own cgroup v2 directory (from `/proc/self/cgroup` and the cgroup2 mount in
 * `/proc/self/mountinfo`), when its `cgroup.procs` lists this process; otherwise undefined. Read once per process
 * (it is asked before every start of a program): a process moved by hand afterwards is moved back by `forkInto`.
 */
export function ownCgroupDir(): string | undefined {
  ownCgroup ??= { dir: findOwnCgroupDir() };
  return ownCgroup.dir;
}

function findOwnCgroupDir(): string | undefined {
  try {
    const mount = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' - '))
      .find(([, right]) => right?.split(' ')[0] === 'cgroup2')?.[0]
      .split(' ');
    if (!mount) return undefined;
    const [root, at] = [mount[3], mount[4]];
    const path = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'))
      ?.slice(3);
    if (path === undefined || !path.startsWith(root)) return undefined;
    const dir = join(at, path.slice(root.length));
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').includes(String(process.pid)) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `spawn` (which must fork synchronously, as child_process.spawn does) with this process moved into
 * `cgroupDir` for that moment and back into `home` after it, so the child starts inside the group with no
 * second `exec` (argvInCgroup's shell). Moving a process (all its threads) costs about 0.07 ms. If this process
 * cannot get back home, it must not stay where the attempt's end would kill it unknowingly: the group is killed,
 * this process with it, and its supervisor restarts it.
 */
export function forkInto<T>(cgroupDir: string, home: string, spawn: () => T): T {
  const pid = String(process.pid);
  writeFileSync(join(cgroupDir, 'cgroup.procs'), pid);
  try {
    return spawn();
  } finally {
    try {
      writeFileSync(join(home, 'cgroup.procs'), pid);
    } catch (err) {
      process.stderr.write(`cannot move back to cgroup ${home} after starting a task in ${cgroupDir} (${(err as Error).message}): ending both\n`);
      writeFileSync(join(cgroupDir, 'cgroup.kill'), '1');
    }
  }
}

/** Everything one attempt may have started, for ending it. */
export interface TaskTree {
  /** The attempt's first process, which leads its process group. */
  pgid: number;
  cookie: string;
  cgroup?: string;
  /** When it started (Date.now()): bounds the PIDs the cookie sweep reads (PidScope). */
  startedAt?: number;
  /**
   * The first PID the attempt's processes can have, when its first process is older than the attempt (`pgid` is
   * taken otherwise): a file a pytest session server runs in itself. With the server's PID there, the sweep would
   * read every PID handed out since the server started, which soon means all of `/proc`, at every file's end.
   */
  firstPid?: number;
  /**
   * A file forked by a warm runner (warm-python.ts): its first process, and what it forks without `exec`, carry the
   * server's environment and so the server's cookie, not the attempt's. The server runs one file at a time, so
   * every process with its cookie but the server itself belongs to this attempt.
   */
  server?: { pid: number; cookie: string };
}

/**
 * Sends `signal` to the attempt's group, to every process with its cookie, and (SIGKILL) to its cgroup.
 * `sweepLeader` false: the cookie sweep skips the group's first process, which the group's signal reaches anyway
 * (it was started in a session of its own, and a session's leader cannot leave its group). At a file's end, when it
 * has exited, it is often the only PID in the sweep's scope.
 */
export function signalTree(tree: TaskTree, signal: NodeJS.Signals, sweepLeader = true): void {
  signalGroup(tree.pgid, signal);
  signalLeftovers(tree, signal, sweepLeader ? undefined : tree.pgid);
}

/**
 * What `signalTree` does but for the group: for a file a pytest session server ran in its own process
 * (warm-python.ts), whose group is the server's, which goes on. Its cgroup (the server has moved out of it), every
 * process with the attempt's cookie (but `skip`), and every process with the server's cookie but the server.
 */
export function signalLeftovers(tree: TaskTree, signal: NodeJS.Signals, skip?: number): void {
  if (tree.cgroup) {
    const cg = new CgroupTree(tree.cgroup);
    if (signal === 'SIGKILL') cg.kill();
    else cg.signal(signal);
  }
  const scope = tree.startedAt === undefined ? undefined : { firstPid: tree.firstPid ?? tree.pgid, startedAt: tree.startedAt };
  signalCookie(TASK_COOKIE_VAR, tree.cookie, signal, scope, skip);
  if (tree.server) signalCookie(TASK_COOKIE_VAR, tree.server.cookie, signal, scope, tree.server.pid);
}
