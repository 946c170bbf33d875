import { type ChildProcess, spawn } from 'node:child_process';
import type { Duplex, Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, openSync, readdirSync, readSync, realpathSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { type RunOutcome, type RunRequest, removeWhenEmpty, resolveProgram, runProcess, stopOnAbort, TAIL_CHARS } from './process-runner.js';
import { CgroupTree, nextPid, processExists, signalLeftovers, signalTree, TASK_COOKIE_VAR, type TaskTree } from './process-tree.js';
import { TailBuffer } from './tail-buffer.js';
import { followJsonLines } from './json-line-child.js';
import { WARM_PYTEST_SERVER } from './warm-pytest-server.js';
import { WARM_PYTEST_SESSION } from './warm-pytest-session.js';
import { NODE_SESSION_REPORTER, NODE_SESSION_SOURCE, nodeTestPlan, type NodeTestPlan } from './warm-node-session.js';

/**
 * Warm pytest: pytest's own start-up (importing it and its plugins, about 0.2-0.5 s) is paid once per slot
 * rather than once per file. A server per slot imports pytest and forks a child per file (warm-pytest-server.ts);
 * each file is still its own attempt, with its own process, session, cgroup, environment, output, exit code and
 * JUnit report. What differs from a cold `python -m pytest <file>`: pytest and its plugins were imported before
 * the file's environment was set (a plugin that reads a variable at import sees the worker's), and every file
 * of one server shares its hash seed.
 *
 * Session mode (`runners.warm: {".py": "session"}`) goes further, as pytest-xdist does: a server per slot, folder
 * and command runs one pytest session and each file inside it (warm-pytest-session.ts), without a process or a
 * session of its own. Each file is still its own attempt, with its own environment, cgroup, output, exit code and
 * JUnit report, and its modules are imported afresh; what it changes elsewhere in the process stays for the files
 * after it, as in one pytest run.
 *
 * A Node runner (`node [options] <file>`, with `runners.warm: {".mjs": "session"}`) gets the same from a Node
 * session server (warm-node-session.ts): one Node process per slot, folder and options that imports each file in
 * a suite of its own, without paying Node's start-up per file.
 */

/** Output folders are named `fleet-out-<host>-<worker pid>-…`: a later worker can tell a dead one's apart. */
const hostStem = (host: string) => `fleet-out-${host.replace(/[^A-Za-z0-9.]/g, '_')}-`;
export const outDirStem = (host: string, pid: number) => `${hostStem(host)}${pid}-`;

/**
 * Removes the output folders this host's workers left when they were killed (SIGKILL gives them no chance to
 * remove their own): those whose pid is not a live process. A folder of another host (a container sharing the
 * folder, with pids of its own) or of a live pid is left alone. Returns the folders removed.
 */
export function sweepStaleOutputDirs(base = tmpdir(), host = hostname()): string[] {
  const mine = hostStem(host);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(mine)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(mine.length))?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || processExists(pid)) continue;
    try {
      rmSync(join(base, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // another user's, or going already
    }
  }
  return removed;
}

let swept = false;

/** A new output folder of this worker's; the first one in a process sweeps what dead workers left first. */
function newOutDir(): string {
  if (!swept) {
    swept = true;
    sweepStaleOutputDirs();
  }
  return mkdtempSync(join(tmpdir(), outDirStem(hostname(), process.pid)));
}

/** A file to run in a session server: its path as the command names it, and the JUnit path the command names. */
export interface SessionFile {
  file: string;
  junit?: string;
}

/** A session server's start: its folder, its command's options without the file and the JUnit path. */
interface SessionPlan {
  cwd: string;
  argv0: string | null;
  path0: string;
  args: string[];
  /** The worker's own cgroup, where the server moves back to after each file ('' when there are no cgroups). */
  home: string;
}

/**
 * `args` without `file` (named once, as an argument of its own) and without `--junitxml <junit>`: the options a
 * session server starts with; undefined when the command names the file otherwise, or the report another way.
 */
export function sessionArgs(args: readonly string[], { file, junit }: SessionFile): string[] | undefined {
  if (args.filter((a) => a === file).length !== 1) return undefined;
  const out: string[] = [];
  let reported = junit === undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === file) continue;
    if (junit !== undefined && (a === '--junitxml' || a === '--junit-xml') && args[i + 1] === junit) {
      i++;
      reported = true;
    } else if (junit !== undefined && (a === `--junitxml=${junit}` || a === `--junit-xml=${junit}`)) reported = true;
    else out.push(a);
  }
  return reported && !out.some((a) => junit !== undefined && a.includes(junit)) ? out : undefined;
}

/** How one template command maps onto the warm server, when it is a plain pytest command. */
export interface WarmPlan {
  /** The Python that runs pytest: servers are kept per interpreter. */
  interpreter: string;
  /** `sys.argv[0]` for the child: the `pytest` script, or null for `python -m pytest`. */
  argv0: string | null;
  args: string[];
  /** `sys.path[0]`: the working folder for `-m pytest`, the script's folder for the script (as Python sets it). */
  path0: string;
}

const PYTHON = /^python(\d+(\.\d+)?)?$/;

/**
 * The plan for `argv` when it runs pytest in a way the warm server reproduces: `<python> -m pytest ...` with no
 * interpreter options, or a `pytest`/`py.test` script whose `#!` names a Python; else undefined (run it cold).
 */
export function warmPytestPlan(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): WarmPlan | undefined {
  const [first, ...rest] = argv;
  if (first === undefined) return undefined;
  if (PYTHON.test(basename(first))) {
    if (rest[0] !== '-m' || rest[1] !== 'pytest') return undefined;
    const interpreter = resolveProgram(first, env, cwd);
    return interpreter === undefined ? undefined : { interpreter, argv0: null, args: rest.slice(2), path0: cwd };
  }
  if (!/^py\.?test$/.test(basename(first))) return undefined;
  const script = resolveProgram(first, env, cwd);
  if (!script) return undefined;
  const interpreter = shebangPython(script, env, cwd);
  return interpreter === undefined ? undefined : { interpreter, argv0: script, args: rest, path0: dirname(realpathSync(script)) };
}

/** The Python a script's `#!` line names (directly or through `/usr/bin/env`), with no options; else undefined. */
function shebangPython(script: string, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  let head: string;
  try {
    const fd = openSync(script, 'r');
    try {
      const buf = Buffer.alloc(256);
      head = buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const m = /^#!\s*(\S+)(?:[ \t]+(\S+))?[ \t]*\r?\n/.exec(head);
  if (!m) return undefined;
  const [, program, arg] = m;
  if (basename(program) === 'env' && arg && PYTHON.test(arg)) return resolveProgram(arg, env, cwd);
  return arg === undefined && PYTHON.test(basename(program)) ? program : undefined;
}

type ServerMessage =
  | { ready: string; site?: string }
  | { error: string }
  | { started: number }
  | { failed: string }
  | { exit: number; dropped: number; retire?: boolean };

/**
 * A file's output file is kept under this on disk (the server checks four times a second and drops all but the
 * last bytes it reads back), so a test that prints without end cannot fill the disk.
 */
const OUTPUT_CAP_BYTES = 64 * 1024 * 1024;
/** What is read back of a file's output when it ends, and what the cap always leaves. */
const READ_BACK_BYTES = TAIL_CHARS * 4;

/** How long a server may take to import pytest and run its warm-up session. */
const START_TIMEOUT_MS = 30_000;

/**
 * One warm Python with pytest imported, or a Node session server (`node` set); runs one file at a time. A Node
 * server's fds 1 and 2 are one output file of its own, which it empties before each file.
 */
export class WarmServer {
  /** Carried by the server and by what it forks (their environment is the server's until they `exec`). */
  readonly cookie = randomBytes(16).toString('hex');
  private handler: ((m: ServerMessage) => void) | undefined;
  private deathListener: ((why: string) => void) | undefined;
  private dead: string | undefined;
  /** Where pytest was imported from, and its mtime then (see `current`). */
  private site: { dir: string; stamp: string | undefined } | undefined;

  private readonly child: ChildProcess;
  /** Where requests go: the server's stdin, a Node server's fd 3. */
  private readonly input: Writable | null;
  /** The files' output files, one at a time (a folder of this server's own, mode 0700; made on its first file). */
  private outDir: string | undefined;
  /** A Node server's output file (its fds 1 and 2). */
  private readonly nodeOut: string | undefined;
  private busy = false;
  /** A Node server that asked to be ended after its last file (it has run its share of files, or grown). */
  private retired = false;
  /** What it is, in messages. */
  private readonly what: string;

  private constructor(
    program: string,
    env: NodeJS.ProcessEnv,
    private readonly outputCapBytes: number,
    private readonly session?: SessionPlan,
    node?: NodeTestPlan & { files: number },
  ) {
    this.what = node ? 'node test session' : 'warm pytest server';
    const options = {
      env: { ...env, [TASK_COOKIE_VAR]: this.cookie },
      cwd: session?.cwd ?? '/',
      // Its own session: a terminal's Ctrl-C aimed at the worker does not end a file midway; stdin's end does.
      detached: true,
    };
    if (node && session) {
      this.outDir = newOutDir();
      this.nodeOut = join(this.outDir, 'output');
      const fd = openSync(this.nodeOut, 'a', 0o600);
      try {
        const source = [`--test-reporter=${NODE_SESSION_REPORTER}`, '--input-type=module', '-e', NODE_SESSION_SOURCE, session.home];
        this.child = spawn(program, [...node.flags, ...source, JSON.stringify({ cwd: session.cwd, files: node.files })], {
          ...options,
          stdio: ['ignore', fd, fd, 'pipe'],
        });
      } finally {
        closeSync(fd);
      }
      this.input = this.child.stdio[3] as Duplex;
    } else {
      const source = session ? ['-c', WARM_PYTEST_SESSION, session.home, JSON.stringify(session)] : ['-c', WARM_PYTEST_SERVER];
      this.child = spawn(program, source, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
      this.input = this.child.stdin;
    }
  }

  /**
   * Starts a server for `interpreter` with `env` (the worker's: the interpreter starts as a cold run's would) and
   * waits until it is warm; rejects with the reason when that Python cannot import pytest.
   */
  static start(interpreter: string, env: NodeJS.ProcessEnv, outputCapBytes = OUTPUT_CAP_BYTES): Promise<WarmServer> {
    return new WarmServer(interpreter, env, outputCapBytes).listen();
  }

  /** A session server (see above) for `plan`'s files in `session.cwd`; rejects when its session cannot start. */
  static startSession(plan: WarmPlan, session: SessionPlan, env: NodeJS.ProcessEnv, outputCapBytes = OUTPUT_CAP_BYTES): Promise<WarmServer> {
    return new WarmServer(plan.interpreter, env, outputCapBytes, session).listen();
  }

  /**
   * A Node session server (see warm-node-session.ts) for `plan`'s files in `cwd`, ended after `files` files;
   * rejects when it cannot start.
   */
  static startNodeSession(
    plan: NodeTestPlan,
    where: { cwd: string; home: string; files: number },
    env: NodeJS.ProcessEnv,
    outputCapBytes = OUTPUT_CAP_BYTES,
  ): Promise<WarmServer> {
    const { cwd, home, files } = where;
    return new WarmServer(plan.node, env, outputCapBytes, { cwd, argv0: null, path0: cwd, args: [], home }, { ...plan, files }).listen();
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  /**
   * False once the folder pytest was imported from has changed (a package installed or removed there, by a
   * commit's setup say): the server's imported modules may no longer be what is installed.
   */
  get current(): boolean {
    return !this.retired && (this.site === undefined || folderStamp(this.site.dir) === this.site.stamp);
  }

  private listen(): Promise<WarmServer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill();
        reject(new Error(`it did not get ready within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      this.handler = (m) => {
        clearTimeout(timer);
        this.handler = undefined;
        if ('ready' in m) {
          if (m.site !== undefined) this.site = { dir: m.site, stamp: folderStamp(m.site) };
          resolve(this);
        } else {
          this.kill();
          reject(new Error('error' in m ? m.error : `unexpected first message ${JSON.stringify(m)}`));
        }
      };
      followJsonLines<ServerMessage>(
        this.child,
        (m) => this.handler?.(m),
        (ended) => {
          clearTimeout(timer);
          // A Node server's own output (why it could not start, say) is in its output file.
          const said = this.nodeOut === undefined ? '' : readTail(this.nodeOut, 2048).trim();
          const why = said ? `${ended}: ${said}` : ended;
          this.died(why);
          reject(new Error(why));
        },
        this.nodeOut === undefined ? undefined : (this.input as Duplex),
      );
    });
  }

  private died(why: string): void {
    if (this.dead !== undefined) return;
    this.dead = why;
    // A file running now still reads its output back; its run() removes the folder after.
    if (!this.busy) this.removeOutDir();
    this.deathListener?.(why);
  }

  private removeOutDir(): void {
    if (this.outDir !== undefined) rmSync(this.outDir, { recursive: true, force: true });
    this.outDir = undefined;
  }

  /**
   * Ends the server (stdin's end; it exits once no file runs). An idle server's output folder goes now: the
   * worker may exit before the server's end is seen, and the folder would outlive them both.
   */
  close(): void {
    this.input?.end();
    if (!this.busy) this.removeOutDir();
  }

  kill(): void {
    this.died('stopped');
    try {
      this.child.kill('SIGKILL');
    } catch {
      // gone
    }
  }

  /**
   * Runs one file as `runProcess` runs a command: the same request (cookie, cgroup, abort, kill grace) and the
   * same outcome. Output goes to a file of the attempt's own, in a folder of the server's own (mode 0700), and its
   * last 64 KiB are read back when the file ends; `stdout` is that same combined output (tests read only the
   * combined output).
   */
  async run(req: RunRequest, plan: WarmPlan | undefined, file?: SessionFile): Promise<RunOutcome> {
    this.busy = true;
    const output = new TailBuffer(TAIL_CHARS);
    const started = performance.now();
    const startedAt = Date.now();
    this.outDir ??= newOutDir();
    const out = this.nodeOut ?? join(this.outDir, req.cookie);
    const cgroup = req.cgroupParent ? new CgroupTree(req.cgroupParent).child(`t-${req.cookie}`) : undefined;
    const keep = Math.min(READ_BACK_BYTES, Math.floor(this.outputCapBytes / 2));
    const request = {
      ...(this.session || !plan ? { file: file?.file, junit: file?.junit ?? null } : { argv0: plan.argv0, args: plan.args, path0: plan.path0 }),
      cwd: req.cwd,
      env: req.env,
      out,
      cgroup: cgroup?.dir ?? null,
      cap: this.outputCapBytes,
      keep,
    };
    // A session server's file runs in the server, started long before: its processes' PIDs come after this one.
    const firstPid = this.session ? nextPid() : undefined;
    this.input?.write(`${JSON.stringify(request)}\n`);

    let dropped = 0;
    const result = await new Promise<{ exitCode: number; started: boolean; aborted: boolean; tree?: TaskTree }>((resolve) => {
      let tree: TaskTree | undefined;
      let done = false;
      const finish = (exitCode: number, startedOk = true) => {
        if (done) return;
        done = true;
        stop.dispose();
        this.handler = undefined;
        this.deathListener = undefined;
        resolve({ exitCode, started: startedOk, aborted: stop.aborted, ...(tree && { tree }) });
      };
      const stop = stopOnAbort(
        req,
        () => tree,
        () => {
          // The server never said the file ended: it is not trusted with another.
          this.kill();
          finish(137);
        },
      );
      this.handler = (m) => {
        if ('started' in m) {
          tree = {
            pgid: m.started,
            cookie: req.cookie,
            startedAt,
            ...(firstPid !== undefined && { firstPid }),
            server: { pid: this.pid, cookie: this.cookie },
            ...(cgroup && { cgroup: cgroup.dir }),
          };
          req.onStart?.(tree);
          stop.treeKnown();
        } else if ('failed' in m) {
          output.push(`cannot start ${plan?.argv0 ?? (this.nodeOut ? 'the file' : 'pytest')} in the ${this.what}: ${m.failed}\n`);
        } else if ('exit' in m) {
          dropped = m.dropped;
          if (m.retire) this.retired = true;
          finish(m.exit < 0 ? 128 - m.exit : m.exit, tree !== undefined);
        }
      };
      this.deathListener = (why) => {
        // A session server is the file's own process: stopping the file ends it.
        if (this.session && stop.aborted) {
          output.push(`[fleet] the file was stopped, and the ${this.nodeOut ? 'node test session' : 'pytest session server'} it ran in with it\n`);
          finish(137, tree !== undefined);
          return;
        }
        output.push(`[fleet] the ${this.what} ended while this file ran: ${why}\n`);
        finish(1, tree !== undefined);
      };
      if (this.dead !== undefined) this.deathListener(this.dead);
    });
    // Whatever the file left running goes with it (what it forked carries the server's cookie, what it exec'd the
    // attempt's); a session server itself goes on, unless it was stopped (then it is dead already).
    if (result.tree) (this.session && this.alive ? signalLeftovers : signalTree)(result.tree, 'SIGKILL');
    try {
      output.push(readTail(out, keep));
      // Last, so the tail kept in memory does not push it out.
      if (dropped > 0)
        output.push(`\n[fleet] ${dropped} bytes of this file's earlier output were dropped (it is kept under ${this.outputCapBytes} bytes)\n`);
    } finally {
      try {
        if (out !== this.nodeOut) unlinkSync(out);
      } catch {
        // never made (the file did not start)
      }
      this.busy = false;
      if (this.dead !== undefined) this.removeOutDir();
      if (cgroup) removeWhenEmpty(cgroup);
    }
    return {
      exitCode: result.exitCode,
      started: result.started,
      aborted: result.aborted,
      durationMs: performance.now() - started,
      output,
      stdout: output,
    };
  }
}

/** A folder's identity and mtime, or undefined when it cannot be read. */
function folderStamp(dir: string): string | undefined {
  try {
    const st = statSync(dir, { bigint: true });
    return `${st.ino}:${st.mtimeNs}`;
  } catch {
    return undefined;
  }
}

/** The last `maxBytes` of a file as text ('' when it does not exist). */
function readTail(path: string, maxBytes: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, maxBytes);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** What decides a command's session server: the command, its folder, and whether its files get cgroups. */
export type SessionRequest = Pick<RunRequest, 'argv' | 'cwd' | 'cgroupParent'>;

export interface WarmPoolOptions {
  /** The environment servers start with (the worker's, with its cookie). */
  env: NodeJS.ProcessEnv;
  /** Servers kept idle at most, whatever their interpreters (a worker's slots). */
  maxIdle: number;
  /** Told when an interpreter cannot run pytest warm, and why. */
  onRefused?: (interpreter: string, why: string) => void;
  /** A server idle this long ends (10 minutes). */
  idleMs?: number;
  /** A file's output is kept under this many bytes on disk (64 MiB). */
  outputCapBytes?: number;
  /**
   * The worker's own cgroup (ownCgroupDir()): a session server moves back there after each file. Without it, files
   * whose attempts have a cgroup run in the fork server instead.
   */
  home?: string;
  /** A Node session server is ended after this many files (1,000): the ES modules it imported stay loaded. */
  nodeSessionFiles?: number;
}

/**
 * A worker's warm servers: a file takes an idle server for its interpreter (or starts one) and gives it back. At
 * most `maxIdle` servers are kept idle in all (a worker's concurrency), the least recently used going first, so
 * interpreters that come and go (a virtualenv per commit's checkout, say) cannot pile up Pythons; a server idle
 * for `idleMs` ends. An interpreter that cannot import pytest is not tried again for a minute; its files run
 * cold meanwhile.
 */
export class WarmServerPool {
  /** Idle servers, least recently used first; `key`: the interpreter (a session server's: its folder and command too). */
  private idle: Array<{ key: string; server: WarmServer; since: number }> = [];
  /** Session servers started ahead of their files (prestart) and not taken yet: the first files wait for these. */
  private starting: Array<{ key: string; server: Promise<WarmServer | undefined> }> = [];
  private readonly refused = new Map<string, { until: number; why: string }>();
  private closed = false;
  private sweeper: NodeJS.Timeout | undefined;

  private readonly env: NodeJS.ProcessEnv;
  private readonly maxIdle: number;
  private readonly onRefused: (interpreter: string, why: string) => void;
  private readonly idleMs: number;
  private readonly outputCapBytes: number;
  private readonly home: string | undefined;
  private readonly nodeSessionFiles: number;

  constructor(opts: WarmPoolOptions) {
    this.home = opts.home;
    this.nodeSessionFiles = opts.nodeSessionFiles ?? 1000;
    this.env = opts.env;
    this.maxIdle = opts.maxIdle;
    this.onRefused = opts.onRefused ?? (() => undefined);
    this.idleMs = opts.idleMs ?? 10 * 60_000;
    this.outputCapBytes = opts.outputCapBytes ?? OUTPUT_CAP_BYTES;
  }

  /** How many servers are idle now (for tests and health). */
  get idleCount(): number {
    return this.idle.length;
  }

  /** A warm server for `interpreter`, or undefined when there cannot be one (run the file cold). */
  acquire(interpreter: string): Promise<WarmServer | undefined> {
    return this.take(interpreter, interpreter, () => WarmServer.start(interpreter, this.env, this.outputCapBytes));
  }

  /** An idle server for `key`, else one `start` makes; undefined when `key` was refused within the minute. */
  private async take(key: string, what: string, start: () => Promise<WarmServer>): Promise<WarmServer | undefined> {
    if (this.closed) return undefined;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const entry = this.idle[i];
      if (entry.key !== key) continue;
      this.idle.splice(i, 1);
      if (entry.server.alive && entry.server.current) return entry.server;
      entry.server.close();
    }
    // One started ahead for this key: waited for rather than another started beside it.
    const ahead = this.starting.findIndex((e) => e.key === key);
    if (ahead >= 0) {
      const [entry] = this.starting.splice(ahead, 1);
      const server = await entry.server;
      if (server?.alive && server.current) return server;
      server?.close();
    }
    if (this.refusedNow(key)) return undefined;
    return this.startOrRefuse(key, what, start);
  }

  private refusedNow(key: string): boolean {
    const refusal = this.refused.get(key);
    return refusal !== undefined && refusal.until > Date.now();
  }

  /** `start()`'s server, or undefined when it failed: then `key` is refused for a minute, and the reason told. */
  private async startOrRefuse(key: string, what: string, start: () => Promise<WarmServer>): Promise<WarmServer | undefined> {
    try {
      return await start();
    } catch (err) {
      const why = (err as Error).message;
      this.refused.set(key, { until: Date.now() + 60_000, why });
      this.onRefused(what, why);
      return undefined;
    }
  }

  /**
   * The session server `req`'s command can run in (a Node one, or a pytest one): its key, its name in warnings,
   * its start, and the pytest plan; else undefined.
   */
  private sessionOf(req: SessionRequest, session: SessionFile, env: NodeJS.ProcessEnv) {
    if (req.cgroupParent && !this.home) return undefined;
    const home = this.home ?? '';
    const node = nodeTestPlan(req.argv, env, req.cwd, session.file, session.junit);
    if (node)
      return {
        key: JSON.stringify(['node', node.node, req.cwd, node.flags]),
        what: `${node.node} (a node test session in ${req.cwd})`,
        start: () => WarmServer.startNodeSession(node, { cwd: req.cwd, home, files: this.nodeSessionFiles }, env, this.outputCapBytes),
        plan: undefined,
      };
    const plan = warmPytestPlan(req.argv, env, req.cwd);
    const args = plan && sessionArgs(plan.args, session);
    if (!plan || !args) return undefined;
    const start = { cwd: req.cwd, argv0: plan.argv0, path0: plan.path0, args, home };
    return {
      key: JSON.stringify([plan.interpreter, start.argv0, start.cwd, args]),
      what: `${plan.interpreter} (a pytest session in ${req.cwd})`,
      start: () => WarmServer.startSession(plan, start, env, this.outputCapBytes),
      plan,
    };
  }

  /**
   * Starts up to `count` session servers for `req`'s command ahead of its files (`session`: the file and JUnit
   * path that command was filled with), never more than `maxIdle` idle and starting in all. A file that comes
   * while one starts takes it rather than starting another; one no file took joins the idle servers. They start
   * with the pool's environment (each file still gets its own). Returns how many it started: none when the
   * command cannot run in a session server or its servers were refused within the minute.
   */
  prestart(req: SessionRequest, session: SessionFile, count: number): number {
    const s = this.sessionOf(req, session, this.env);
    if (!s || this.closed || this.refusedNow(s.key)) return 0;
    let started = 0;
    while (started < count && this.idle.length + this.starting.length < this.maxIdle) {
      const entry = { key: s.key, server: this.startOrRefuse(s.key, s.what, s.start) };
      this.starting.push(entry);
      started++;
      void entry.server.then((server) => {
        const at = this.starting.indexOf(entry);
        if (at < 0) return; // taken by a file, or the pool closed
        this.starting.splice(at, 1);
        if (server) this.release(s.key, server);
      });
    }
    return started;
  }

  /**
   * Runs `req` warm when it is a pytest command the server reproduces and a server can be had, else cold. With
   * `session` (the file and the JUnit path its command names), in a session server when the command allows one
   * (the file and the report named as arguments of their own; a pytest command, or a Node one: nodeTestPlan),
   * else as without.
   */
  async run(req: RunRequest, session?: SessionFile): Promise<RunOutcome> {
    const s = session && this.sessionOf(req, session, req.env);
    if (s) {
      const server = await this.take(s.key, s.what, s.start);
      if (server?.alive) return this.runOn(s.key, server, req, s.plan, session);
    }
    const plan = warmPytestPlan(req.argv, req.env, req.cwd);
    if (!plan) return runProcess(req);
    const server = await this.acquire(plan.interpreter);
    // (A server that died since it was taken: this file runs cold rather than fail for it.)
    if (!server?.alive) return runProcess(req);
    return this.runOn(plan.interpreter, server, req, plan);
  }

  private async runOn(key: string, server: WarmServer, req: RunRequest, plan: WarmPlan | undefined, session?: SessionFile): Promise<RunOutcome> {
    try {
      return await server.run(req, plan, session);
    } finally {
      this.release(key, server);
    }
  }

  release(key: string, server: WarmServer): void {
    if (this.closed || !server.alive || !server.current) {
      server.close();
      return;
    }
    this.idle.push({ key, server, since: Date.now() });
    while (this.idle.length > this.maxIdle) this.idle.shift()?.server.close();
    this.sweeper ??= setInterval(() => this.sweep(), Math.min(this.idleMs, 30_000)).unref();
  }

  /** Ends servers idle for longer than `idleMs`. */
  private sweep(): void {
    const cutoff = Date.now() - this.idleMs;
    const [old, kept] = [this.idle.filter((e) => e.since <= cutoff), this.idle.filter((e) => e.since > cutoff)];
    this.idle = kept;
    for (const e of old) e.server.close();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const e of this.idle) e.server.close();
    this.idle = [];
    for (const e of this.starting) void e.server.then((server) => server?.close());
    this.starting = [];
  }
}
