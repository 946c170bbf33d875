import { jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, pidIn, waitFor } from '@fleet/testing';
import { Launcher } from './launcher.js';
import { runProcess } from './process-runner.js';
import { CgroupTree, ownCgroupDir, TASK_COOKIE_VAR } from './process-tree.js';
import { TailBuffer } from './tail-buffer.js';

// These tests start real processes (Python, pytest, node). Each wait inside is bounded by the code under test;
// this limit, above those bounds, covers hooks and tests without their own: jest's default 5 s was too short for
// a warm pytest server's start on a loaded CI machine.
jest.setTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), 'runner-spec-'));
/** Set while the runs of a describe go through a launcher. */
let launcher: Launcher | undefined;
const run = (argv: string[], opts: { signal?: AbortSignal; cgroupParent?: string; env?: Record<string, string> } = {}) => {
  const cookie = randomBytes(16).toString('hex');
  return runProcess({
    argv,
    cwd: dir,
    env: { ...process.env, ...opts.env, [TASK_COOKIE_VAR]: cookie },
    signal: opts.signal ?? new AbortController().signal,
    killGraceMs: 300,
    cookie,
    ...(opts.cgroupParent && { cgroupParent: opts.cgroupParent }),
    ...(launcher && { launcher }),
  });
};

/** A program that starts a process escaping its process group (and, with `clearEnv`, its environment too), records its pid, and exits at once. */
function escaper(name: string, clearEnv: boolean): { script: string; pidFile: string } {
  const pidFile = join(dir, `${name}.pid`);
  const script = join(dir, `${name}.mjs`);
  writeFileSync(
    script,
    [
      "import { spawn } from 'node:child_process';",
      "import { writeFileSync } from 'node:fs';",
      `const c = spawn('setsid', ['sleep', '300'], { detached: true, stdio: ['ignore', 'inherit', 'ignore']${clearEnv ? ', env: {}' : ''} });`,
      `writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));`,
      'c.unref();',
      "console.log('left a process behind');",
    ].join('\n'),
  );
  return { script, pidFile };
}

// Every case twice: spawned by this process, and launched by a launcher (a small Python that posix_spawns).
describe.each(['spawned', 'launched'])('runProcess, %s', (mode) => {
  beforeAll(async () => {
    launcher = mode === 'launched' ? await Launcher.start(Launcher.python() as string, ownCgroupDir() ?? '', process.env) : undefined;
  });
  afterAll(() => {
    launcher?.close();
    launcher = undefined;
  });

  it('reports the signal that ended the program as 128 + its number', async () => {
    expect((await run(['node', '-e', 'process.kill(process.pid, "SIGTERM")'])).exitCode).toBe(143);
  });

  it('runs argv without a shell and collects the output', async () => {
    const r = await run(['node', '-e', 'console.log(process.argv[1]); console.error("err")', '$(whoami); echo hi']);
    expect(r).toMatchObject({ exitCode: 0, aborted: false, started: true });
    expect(r.stdout.text()).toBe('$(whoami); echo hi\n');
    expect(r.output.text()).toContain('err');
  });

  it('keeps characters whole that the pipe split between two reads', async () => {
    const r = await run(['node', '-e', 'process.stdout.write("é€".repeat(50_000))']);
    expect(r.stdout.text()).toMatch(/^[é€]+$/);
  });

  it('passes the exit code through', async () => {
    expect((await run(['node', '-e', 'process.exit(3)'])).exitCode).toBe(3);
  });

  it('reports a program that cannot start', async () => {
    const r = await run(['definitely-not-a-program-xyz']);
    expect(r).toMatchObject({ exitCode: 127, started: false });
    expect(r.output.text()).toMatch(/cannot start definitely-not-a-program-xyz: not found/);
  });

  it('stops the whole tree on abort, even a child that ignores SIGTERM', async () => {
    const pidFile = join(dir, `grandchild-${mode}.pid`);
    writeFileSync(
      join(dir, 'stubborn.mjs'),
      [
        "import { spawn } from 'node:child_process';",
        "import { writeFileSync } from 'node:fs';",
        "process.on('SIGTERM', () => {});",
        "const c = spawn(process.execPath, ['-e', 'process.on(\"SIGTERM\", () => {}); setInterval(() => {}, 1000)'], { stdio: 'ignore' });",
        `writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));`,
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    const abort = new AbortController();
    const running = run(['node', 'stubborn.mjs'], { signal: abort.signal });
    const grandchild = await waitFor(() => pidIn(pidFile), {
      what: 'the grandchild to start',
      timeoutMs: 10_000,
    });
    abort.abort();
    const r = await running;
    expect(r.aborted).toBe(true);
    expect(r.exitCode).toBe(137);
    await waitFor(() => !isAlive(grandchild), { what: `grandchild ${grandchild} to die`, timeoutMs: 5000 });
  });

  it('ends when the program exits, though a process that left its group holds stdout open; that process is killed', async () => {
    const { script, pidFile } = escaper('setsid-escape', false);
    const r = await run(['node', script]);
    expect(r).toMatchObject({ exitCode: 0, started: true });
    expect(r.output.text()).toContain('left a process behind');
    const escaped = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => !isAlive(escaped), { what: `the escaped process ${escaped} to be killed (found by its cookie)`, timeoutMs: 5000 });
  });

  const cgroupRoot = CgroupTree.detect();
  (cgroupRoot ? it : it.skip)('with a cgroup, kills even a process that left its group and cleared its environment', async () => {
    const parent = new CgroupTree(cgroupRoot as string).child(`fleet-spec-${process.pid}`);
    try {
      const { script, pidFile } = escaper('env-escape', true);
      const r = await run(['node', script], { cgroupParent: parent.dir });
      expect(r.exitCode).toBe(0);
      const escaped = Number(readFileSync(pidFile, 'utf8'));
      await waitFor(() => !isAlive(escaped), { what: `the escaped process ${escaped} to be killed (by its cgroup)`, timeoutMs: 5000 });
    } finally {
      await waitFor(() => parent.remove(), { what: 'the test cgroup to empty', timeoutMs: 5000 });
    }
  });
});

describe('forkInto', () => {
  const cgroupRoot = CgroupTree.detect();
  const home = ownCgroupDir();
  (cgroupRoot && home ? it : it.skip)("starts the program inside the attempt's cgroup, and the caller stays in its own", async () => {
    const parent = new CgroupTree(cgroupRoot as string).child(`fleet-spec-fork-${process.pid}`);
    const mine = () => readFileSync('/proc/self/cgroup', 'utf8');
    const before = mine();
    try {
      // The program reports its own cgroup; the runner names the attempt's group t-<cookie> under the parent.
      const r = await run(['cat', '/proc/self/cgroup'], { cgroupParent: parent.dir });
      expect(r.exitCode).toBe(0);
      const group =
        r.stdout
          .text()
          .split('\n')
          .find((l) => l.startsWith('0::')) ?? '';
      expect(group).toMatch(new RegExp(`/fleet-spec-fork-${process.pid}/t-[0-9a-f]{32}$`));
      expect(mine()).toBe(before);
      expect(readFileSync(join(home as string, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(process.pid));
    } finally {
      await waitFor(() => parent.remove(), { what: 'the test cgroup to empty', timeoutMs: 5000 });
    }
  });
});

describe('a launcher', () => {
  it('that dies while a program runs ends that attempt with 137, saying why; what comes after is spawned instead', async () => {
    launcher = await Launcher.start(Launcher.python() as string, ownCgroupDir() ?? '', process.env);
    try {
      const pidFile = join(dir, 'orphan.pid');
      const running = run([
        'node',
        '-e',
        `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000)`,
      ]);
      const pid = await waitFor(() => pidIn(pidFile), {
        what: 'the program to start',
        timeoutMs: 10_000,
      });
      process.kill(launcher.pid, 'SIGKILL');
      const r = await running;
      expect(r.exitCode).toBe(137);
      expect(r.output.text()).toMatch(/the launcher exited \(SIGKILL\)/);
      // Its program is ended with the attempt, not left running.
      await waitFor(() => !isAlive(pid), { what: `the program ${pid} to be killed`, timeoutMs: 5000 });
      expect(launcher.alive).toBe(false);
      expect((await run(['node', '-e', 'process.exit(4)'])).exitCode).toBe(4);
    } finally {
      launcher.close();
      launcher = undefined;
    }
  });
});

// clone3 with CLONE_INTO_CGROUP came with Linux 5.7.
const [major = 0, minor = 0] = release().split('.').map(Number);
const hasCloneIntoCgroup = major > 5 || (major === 5 && minor >= 7);

describe.each([{ clone3: 'on' }, { clone3: 'off' }, { clone3: 'auto' }])('a launcher, FLEET_LAUNCHER_CLONE3=$clone3', ({ clone3 }) => {
  const cgroupRoot = CgroupTree.detect();
  const home = ownCgroupDir();
  const name = `fleet-spec-launch-${clone3}-${process.pid}`;
  const marks = join(dir, `probe-marks-${clone3}`);
  /** The attempts' parent, where the launcher times the placements it can choose between. */
  let parent: CgroupTree | undefined;
  beforeAll(async () => {
    parent = cgroupRoot && home ? new CgroupTree(cgroupRoot).child(name) : undefined;
    // Each start of the probe's program leaves a mark: both ways are timed PROBE_ROUNDS (5) times.
    const probe = parent && { in: parent.dir, argv: [process.execPath, '-e', `require('node:fs').appendFileSync(${JSON.stringify(marks)}, 'x')`] };
    launcher = await Launcher.start(Launcher.python() as string, home ?? '', { ...process.env, FLEET_LAUNCHER_CLONE3: clone3 }, probe);
  });
  afterAll(async () => {
    launcher?.close();
    launcher = undefined;
    if (parent) await waitFor(() => (parent as CgroupTree).remove(), { what: 'the test cgroup to empty', timeoutMs: 5000 });
  });

  (cgroupRoot && home && hasCloneIntoCgroup ? it : it.skip)(
    'where both placements work, times them (unless told which) and keeps the faster, leaving no cgroup of its own behind',
    () => {
      const l = launcher as Launcher;
      if (clone3 !== 'auto') {
        expect(l.probe).toBeUndefined();
        expect(existsSync(marks)).toBe(false);
        expect(l.placement).toBe(clone3 === 'on' ? 'clone3' : 'move');
        return;
      }
      const t = l.probe;
      expect(t).toEqual({ clone3: expect.any(Number), move: expect.any(Number) });
      const { clone3: cloned, move: moved } = t as { clone3: number; move: number };
      expect(cloned).toBeGreaterThan(0);
      expect(moved).toBeGreaterThan(0);
      expect(l.placement).toBe(moved < cloned ? 'move' : 'clone3');
      expect(readFileSync(marks, 'utf8')).toBe('x'.repeat(10));
      expect(readdirSync((parent as CgroupTree).dir).filter((f) => f.startsWith('launcher-probe-'))).toEqual([]);
      expect(readFileSync(`/proc/${l.pid}/cgroup`, 'utf8')).toBe(readFileSync('/proc/self/cgroup', 'utf8'));
    },
  );

  (cgroupRoot && home ? it : it.skip)(
    "starts each program in the attempt's cgroup and a session of its own, stdin empty, default signal dispositions; the launcher stays home",
    async () => {
      const l = launcher as Launcher;
      const at = (parent as CgroupTree).dir;
      // (`cat -` reads stdin: it must be empty, not the launcher's requests.)
      const r = await run(['sh', '-c', 'cat -; cat /proc/self/cgroup; grep -E "^(SigIgn|Pid|NSsid):" /proc/$$/status'], { cgroupParent: at });
      expect(r.exitCode).toBe(0);
      const out = r.stdout.text();
      expect(out).toMatch(new RegExp(`^0::.*/${name}/t-[0-9a-f]{32}$`, 'm'));
      // SIGINT (2) and SIGPIPE (13), which the launcher's Python ignores, are back to their defaults.
      const ignored = BigInt(`0x${/^SigIgn:\s*([0-9a-f]+)/m.exec(out)?.[1] ?? 'ffffffff'}`);
      expect(ignored & ((1n << 1n) | (1n << 12n))).toBe(0n);
      expect(/^NSsid:\s*(\d+)/m.exec(out)?.[1]).toBe(/^Pid:\s*(\d+)/m.exec(out)?.[1]);
      expect(readFileSync(`/proc/${l.pid}/cgroup`, 'utf8')).toBe(readFileSync('/proc/self/cgroup', 'utf8'));
      // A program the kernel refuses to run (an executable file of no known format) says why, and the launcher goes on.
      const garbage = join(dir, 'not-a-program');
      writeFileSync(garbage, Buffer.from([0, 1, 2, 3, 10]), { mode: 0o755 });
      const refused = await run([garbage], { cgroupParent: at });
      expect(refused.started).toBe(false);
      expect(refused.output.text()).toMatch(/Exec format error/);
      // What exec refuses before any system call (a NUL inside a value) is refused with the reason, not an exit 127.
      const nul = await run(['sh', '-c', 'exit 0'], { cgroupParent: at, env: { FLEET_SPEC_NUL: 'a\0b' } });
      expect(nul.started).toBe(false);
      expect(nul.output.text()).toMatch(/embedded null byte/);
      expect((await run(['node', '-e', 'process.exit(4)'], { cgroupParent: at })).exitCode).toBe(4);
      expect(l.alive).toBe(true);
    },
  );
});

describe('TailBuffer', () => {
  it('keeps only the last characters', () => {
    const t = new TailBuffer(10);
    for (const s of ['abc', 'defgh', 'ijklmnop', 'q']) t.push(s);
    expect(t.text().endsWith('mnopq')).toBe(true);
    expect(t.text(4)).toBe('nopq');
    expect(t.text().length).toBeLessThanOrEqual(10 + 8);
  });
});
