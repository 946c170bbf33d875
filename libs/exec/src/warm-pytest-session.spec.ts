import { jest } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseJUnit } from '@fleet/runs';
import { hangingPytestFile, PYTEST_QUIET, testFolder, isAlive, leakingPytestFile, pythonWithPytest, sessionHarness, waitFor } from '@fleet/testing';
import { readJUnitReport } from './junit-report.js';
import { runProcess } from './process-runner.js';
import { CgroupTree, nextPid, ownCgroupDir, pidInRange } from './process-tree.js';
import { sessionArgs, WarmServerPool, WarmServer } from './warm-python.js';

// Real Python and pytest processes; every wait inside is bounded by the code under test or by waitFor.
jest.setTimeout(60_000);

const python = pythonWithPytest();
const { dir, file } = testFolder('session-spec-');
/** `python -m pytest -q` for `test`, with `extra` options and a JUnit report at `junit` (`--junitxml <path>`). */
const argvFor = (test: string, junit?: string, ...extra: string[]) => [
  python,
  ...PYTEST_QUIET,
  ...extra,
  ...(junit ? ['--junitxml', junit] : []),
  test,
];

const { firstPids, trees, request, pool, inSession, reset } = sessionHarness(dir, argvFor);
afterAll(() => pool.close());
beforeEach(reset);

describe('sessionArgs', () => {
  it('takes the file and the JUnit path out of the options, and refuses a command that names them otherwise', () => {
    expect(sessionArgs(['-q', 'a.py', '--junitxml', '/r/j.xml'], { file: 'a.py', junit: '/r/j.xml' })).toEqual(['-q']);
    expect(sessionArgs(['--junit-xml=/r/j.xml', '-x', 'a.py'], { file: 'a.py', junit: '/r/j.xml' })).toEqual(['-x']);
    expect(sessionArgs(['-q', 'a.py'], { file: 'a.py' })).toEqual(['-q']);
    // The file named twice, inside another argument, or not at all; the report asked for but not named.
    expect(sessionArgs(['a.py', 'a.py'], { file: 'a.py' })).toBeUndefined();
    expect(sessionArgs(['a.py::test_x'], { file: 'a.py' })).toBeUndefined();
    expect(sessionArgs(['-q', 'a.py'], { file: 'a.py', junit: '/r/j.xml' })).toBeUndefined();
    expect(sessionArgs(['a.py', '-o', 'x=/r/j.xml', '--junitxml=/r/j.xml'], { file: 'a.py', junit: '/r/j.xml' })).toBeUndefined();
  });
});

describe('a pytest session server', () => {
  it('runs file after file in one process, each with the exit code, JUnit cases and summary a cold pytest gives it', async () => {
    file('verdicts/test_pass.py', 'def test_one():\n    assert 1 + 1 == 2\n\ndef test_two():\n    pass\n');
    file('verdicts/test_fail.py', 'def test_bad():\n    print("the value was", 41)\n    assert 41 == 42\n');
    file('verdicts/test_skips_itself.py', 'import pytest\npytest.skip("no GPU here", allow_module_level=True)\n');
    file('verdicts/test_broken.py', 'import no_such_module_xyz\n');
    const cases = async (path: string) => {
      const report = await readJUnitReport(path, parseJUnit);
      if (!report.cases) throw new Error(`no JUnit cases in ${path}: ${report.note}`);
      return report.cases.map((c) => ({ name: c.name, status: c.status }));
    };
    // The summary line pytest prints last (but for the time it took).
    const summary = (o: string) =>
      o
        .trim()
        .split('\n')
        .pop()
        ?.replace(/ in [\d.]+s/, '');
    for (const name of ['test_pass', 'test_fail', 'test_skips_itself', 'test_broken', 'test_pass']) {
      const junitWarm = join(dir, `${name}.session.xml`);
      const junitCold = join(dir, `${name}.cold.xml`);
      const warm = await inSession(`verdicts/${name}.py`, junitWarm);
      const cold = await runProcess(request(argvFor(`verdicts/${name}.py`, junitCold)));
      expect({ name, exit: warm.exitCode, started: warm.started }).toEqual({ name, exit: cold.exitCode, started: true });
      const warmCases = await cases(junitWarm);
      expect(warmCases.length).toBeGreaterThan(0);
      expect(warmCases).toEqual(await cases(junitCold));
      expect(summary(warm.output.text())).toBe(summary(cold.output.text()));
      if (name === 'test_fail') expect(warm.output.text()).toContain('the value was 41');
    }
    // One server ran them all (every other attempt was a cold process of its own).
    const sessionPids = firstPids.filter((_, i) => i % 2 === 0);
    expect(new Set(sessionPids).size).toBe(1);
    expect(isAlive(sessionPids[0])).toBe(true);
  });

  it("gives each file its own environment and imports its modules afresh, so a file's retry starts clean", async () => {
    file(
      'fresh/test_state.py',
      [
        'import os',
        'import helper_mod',
        'RUNS = []',
        'def test_once():',
        '    RUNS.append(1)',
        '    helper_mod.SEEN.append(1)',
        '    assert len(RUNS) == 1 and len(helper_mod.SEEN) == 1',
        '    print("VALUE", os.environ["SESSION_SPEC_VALUE"])',
      ].join('\n'),
    );
    file('fresh/helper_mod.py', 'SEEN = []\n');
    for (const value of ['first', 'second']) {
      const r = await inSession('fresh/test_state.py', undefined, { env: { SESSION_SPEC_VALUE: value } }, '-s');
      expect({ exit: r.exitCode, output: r.output.text() }).toMatchObject({ exit: 0, output: expect.stringContaining(`VALUE ${value}`) });
    }
    expect(new Set(firstPids).size).toBe(1);
  });

  it('ends what a file forked or started when the file ends, and the server goes on', async () => {
    const forked = join(dir, 'forked.pid');
    const execd = join(dir, 'execd.pid');
    file('leaks/test_leaks.py', leakingPytestFile(forked, execd));
    expect((await inSession('leaks/test_leaks.py')).exitCode).toBe(0);
    // The cookie sweep at the file's end reads the PIDs handed out since the file began, not all since the server's
    // start. PIDs wrap at pid_max (32,768 on some hosts), so the range is cyclic.
    const scope = { first: trees[0]?.firstPid ?? 0, last: (nextPid() ?? 1) - 1 };
    expect(pidInRange(firstPids[0], scope)).toBe(false);
    for (const pidFile of [forked, execd]) {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      expect(pidInRange(pid, scope)).toBe(true);
      await waitFor(() => !isAlive(pid), { what: `process ${pid} (${pidFile}) to be ended with its file`, timeoutMs: 5000 });
    }
    expect((await inSession('verdicts/test_pass.py')).exitCode).toBe(0);
    expect(new Set(firstPids).size).toBe(1);
    expect(isAlive(firstPids[0])).toBe(true);
  });

  it('stops a hanging file on abort, the server with it, and the next file gets a new server', async () => {
    const started = join(dir, 'hang.started');
    file('hang/test_hang.py', hangingPytestFile(started));
    const abort = new AbortController();
    const running = inSession('hang/test_hang.py', undefined, { signal: abort.signal });
    await waitFor(() => existsSync(started), { what: 'the hanging test to start', timeoutMs: 20_000 });
    abort.abort();
    expect(await running).toMatchObject({ aborted: true, exitCode: 137 });
    await waitFor(() => !isAlive(firstPids[0]), { what: 'the stopped server to end', timeoutMs: 5000 });
    expect((await inSession('verdicts/test_pass.py')).exitCode).toBe(0);
    expect(firstPids[1]).not.toBe(firstPids[0]);
  });

  const cgroupRoot = CgroupTree.detect();
  (cgroupRoot && ownCgroupDir() ? it : it.skip)("runs each file in the attempt's cgroup and goes back to its own after", async () => {
    const parent = new CgroupTree(cgroupRoot as string).child(`fleet-session-spec-${process.pid}`);
    try {
      file('cg/test_cgroup.py', ['def test_cgroup():', '    print("CGROUP", open("/proc/self/cgroup").read().strip())'].join('\n'));
      const r = await inSession('cg/test_cgroup.py', undefined, { cgroupParent: parent.dir }, '-s');
      expect(r.exitCode).toBe(0);
      expect(r.output.text()).toMatch(new RegExp(`^(CGROUP )?0::.*/fleet-session-spec-${process.pid}/t-[0-9a-f]{32}$`, 'm'));
      const own = readFileSync('/proc/self/cgroup', 'utf8').trim();
      expect(readFileSync(`/proc/${firstPids[0]}/cgroup`, 'utf8').trim()).toBe(own);
    } finally {
      await waitFor(() => parent.remove(), { what: 'the test cgroup to empty', timeoutMs: 5000 });
    }
  });
});

describe('session servers started ahead of their files', () => {
  const PASSING = 'def test_one():\n    pass\n';
  /** The command filled as a worker fills it at boot: a file and a report that come out again. */
  const AHEAD = { file: 'ahead_of_files.py', junit: join(dir, 'ahead.xml') };
  let ahead: WarmServerPool;
  let starts: ReturnType<typeof jest.spyOn>;
  beforeEach(() => {
    ahead = new WarmServerPool({ env: process.env, maxIdle: 2, home: ownCgroupDir() });
    starts = jest.spyOn(WarmServer, 'startSession');
  });
  afterEach(() => {
    starts.mockRestore();
    ahead.close();
  });
  const runIn = (pool: WarmServerPool, test: string, ...extra: string[]) => {
    const junit = join(dir, `${test.replace(/\W/g, '_')}.xml`);
    return pool.run(request(argvFor(test, junit, ...extra)), { file: test, junit });
  };

  it('gives the first files the servers started ahead: one still starting is waited for, not started again', async () => {
    for (const name of ['a', 'b', 'c']) file(`ahead/test_${name}.py`, PASSING);
    // At most as many as the pool keeps idle.
    expect(ahead.prestart({ argv: argvFor(AHEAD.file, AHEAD.junit), cwd: dir }, AHEAD, 5)).toBe(2);
    expect(starts).toHaveBeenCalledTimes(2);
    // Both files come while their servers start (a start takes a Python's import of pytest): each takes one.
    const [a, b] = await Promise.all([runIn(ahead, 'ahead/test_a.py'), runIn(ahead, 'ahead/test_b.py')]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    expect(new Set(firstPids).size).toBe(2);
    expect((await runIn(ahead, 'ahead/test_c.py')).exitCode).toBe(0);
    expect(starts).toHaveBeenCalledTimes(2);
    expect(firstPids.slice(0, 2)).toContain(firstPids[2]);
  });

  it('keeps a server no file took as an idle one, and starts none for a command its files will not run', async () => {
    file('ahead/test_d.py', PASSING);
    expect(ahead.prestart({ argv: argvFor(AHEAD.file, AHEAD.junit), cwd: dir }, AHEAD, 1)).toBe(1);
    await waitFor(() => ahead.idleCount === 1, { what: 'the server started ahead to be idle', timeoutMs: 30_000 });
    expect((await runIn(ahead, 'ahead/test_d.py')).exitCode).toBe(0);
    expect(starts).toHaveBeenCalledTimes(1);
    // Files that get cgroups where the pool has no home cgroup to go back to run outside session servers.
    const homeless = new WarmServerPool({ env: process.env, maxIdle: 2 });
    try {
      expect(homeless.prestart({ argv: argvFor(AHEAD.file, AHEAD.junit), cwd: dir, cgroupParent: '/sys/fs/cgroup/x' }, AHEAD, 1)).toBe(0);
      // A command that names the file inside another argument.
      expect(ahead.prestart({ argv: argvFor(`${AHEAD.file}::test_x`, AHEAD.junit), cwd: dir }, AHEAD, 1)).toBe(0);
    } finally {
      homeless.close();
    }
    expect(starts).toHaveBeenCalledTimes(1);
  });

  it("runs a file cold, with pytest's own verdict, when the session started ahead could not start", async () => {
    file('ahead/test_e.py', PASSING);
    const broken = ['-p', 'no_such_plugin_for_the_spec'];
    expect(ahead.prestart({ argv: argvFor(AHEAD.file, AHEAD.junit, ...broken), cwd: dir }, AHEAD, 1)).toBe(1);
    const warm = await runIn(ahead, 'ahead/test_e.py', ...broken);
    const cold = await runProcess(request(argvFor('ahead/test_e.py', undefined, ...broken)));
    expect(warm.exitCode).toBe(cold.exitCode);
    expect(warm.exitCode).not.toBe(0);
    expect(warm.output.text()).toContain('no_such_plugin_for_the_spec');
    // Refused for the minute: not started again for the file, nor ahead.
    expect(ahead.prestart({ argv: argvFor(AHEAD.file, AHEAD.junit, ...broken), cwd: dir }, AHEAD, 1)).toBe(0);
    expect(starts).toHaveBeenCalledTimes(1);
  });
});
