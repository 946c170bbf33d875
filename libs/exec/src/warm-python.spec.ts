import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseJUnit } from '@fleet/runs';
import { attemptRequest, hangingPytestFile, PYTEST_QUIET, testFolder, isAlive, leakingPytestFile, pythonWithPytest, waitFor } from '@fleet/testing';
import { readJUnitReport } from './junit-report.js';
import { runProcess } from './process-runner.js';
import { CgroupTree } from './process-tree.js';
import { outDirStem, sweepStaleOutputDirs, type WarmPlan, WarmServerPool, type WarmServer, warmPytestPlan } from './warm-python.js';

// These tests start real processes (Python, pytest, node). Each wait inside is bounded by the code under test;
// this limit, above those bounds, covers hooks and tests without their own: jest's default 5 s was too short for
// a warm pytest server's start on a loaded CI machine.
jest.setTimeout(60_000);

const python = pythonWithPytest();
const { dir, file } = testFolder('warm-spec-');
const argvFor = (test: string, junit?: string) => [python, ...PYTEST_QUIET, ...(junit ? [`--junitxml=${junit}`] : []), test];

function request(argv: string[], opts: Parameters<typeof attemptRequest>[2] = {}) {
  return attemptRequest(argv, dir, opts);
}

describe('warmPytestPlan', () => {
  it('takes `<python> -m pytest` and a pytest script whose #! names a Python, and nothing else', () => {
    const env = { PATH: process.env.PATH };
    const plan = warmPytestPlan([python, '-m', 'pytest', '-q', 'a.py'], env, dir);
    expect(plan).toMatchObject({ argv0: null, args: ['-q', 'a.py'], path0: dir });
    // Interpreter options change what the interpreter does: those run cold.
    expect(warmPytestPlan([python, '-X', 'dev', '-m', 'pytest', 'a.py'], env, dir)).toBeUndefined();
    expect(warmPytestPlan(['node', '--test', 'a.mjs'], env, dir)).toBeUndefined();
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'pytest'), `#!/usr/bin/env ${python.split('/').pop()}\nimport sys\n`);
    chmodSync(join(bin, 'pytest'), 0o755);
    expect(warmPytestPlan([join(bin, 'pytest'), 'a.py'], env, dir)).toMatchObject({ argv0: join(bin, 'pytest'), args: ['a.py'], path0: bin });
    writeFileSync(join(bin, 'py.test'), '#!/bin/sh\nexec true\n');
    chmodSync(join(bin, 'py.test'), 0o755);
    expect(warmPytestPlan([join(bin, 'py.test'), 'a.py'], env, dir)).toBeUndefined();
  });
});

describe('a warm pytest server', () => {
  const pool = new WarmServerPool({ env: process.env, maxIdle: 2, outputCapBytes: 1024 * 1024 });
  let server: WarmServer;
  const plan = (argv: string[]) => warmPytestPlan(argv, process.env, dir) as WarmPlan;
  const runWarm = (argv: string[], opts: Parameters<typeof request>[1] = {}) => server.run(request(argv, opts), plan(argv));
  const runCold = (argv: string[]) => runProcess(request(argv));

  beforeAll(async () => {
    const s = await pool.acquire(plan(argvFor('x.py')).interpreter);
    if (!s) throw new Error(`${python} could not start a warm server`);
    server = s;
  });
  afterAll(() => {
    pool.release(plan(argvFor('x.py')).interpreter, server);
    pool.close();
  });

  it('gives each file the verdict, exit code, output and JUnit cases a cold pytest gives it', async () => {
    file('verdicts/test_pass.py', 'def test_one():\n    assert 1 + 1 == 2\n\ndef test_two():\n    pass\n');
    file('verdicts/test_fail.py', 'def test_bad():\n    print("the value was", 41)\n    assert 41 == 42\n');
    file('verdicts/test_skips_itself.py', 'import pytest\npytest.skip("no GPU here", allow_module_level=True)\n');
    file('verdicts/test_broken.py', 'import no_such_module_xyz\n');
    for (const name of ['test_pass', 'test_fail', 'test_skips_itself', 'test_broken']) {
      const junitWarm = join(dir, `${name}.warm.xml`);
      const junitCold = join(dir, `${name}.cold.xml`);
      const warm = await runWarm(argvFor(`verdicts/${name}.py`, junitWarm));
      const cold = await runCold(argvFor(`verdicts/${name}.py`, junitCold));
      expect({ name, exit: warm.exitCode, started: warm.started }).toEqual({ name, exit: cold.exitCode, started: true });
      const cases = async (path: string) => {
        const report = await readJUnitReport(path, parseJUnit);
        if (!report.cases) throw new Error(`no JUnit cases in ${path}: ${report.note}`);
        return report.cases.map((c) => ({ name: c.name, status: c.status }));
      };
      const warmCases = await cases(junitWarm);
      expect(warmCases.length).toBeGreaterThan(0);
      expect(warmCases).toEqual(await cases(junitCold));
      // The summary line pytest prints ends both outputs alike (but for the time it took).
      const summary = (o: string) =>
        o
          .trim()
          .split('\n')
          .pop()
          ?.replace(/ in [\d.]+s/, '');
      expect(summary(warm.output.text())).toBe(summary(cold.output.text()));
    }
    const fail = await runWarm(argvFor('verdicts/test_fail.py'));
    expect(fail.output.text()).toContain('the value was 41');
  }, 60_000);

  it('runs what an exiting interpreter runs: atexit functions a test registered', async () => {
    const marker = join(dir, 'atexit.ran');
    file(
      'exit/test_atexit.py',
      ['import atexit', 'def test_registers():', `    atexit.register(lambda: open(${JSON.stringify(marker)}, "w").write("1"))`].join('\n'),
    );
    const r = await runWarm(argvFor('exit/test_atexit.py'));
    expect(r.exitCode).toBe(0);
    expect(existsSync(marker)).toBe(true);
  }, 60_000);

  it("keeps a file's output file under its cap while the file prints, and never loses its last lines to the cap", async () => {
    // 1 MiB cap (this pool's). The test prints 8 MiB, then its last line, then waits (a bounded poll of its own
    // output file's blocks) until the cap has been enforced after that line: a cap that emptied the file would
    // take the last line with it.
    file(
      'loud/test_loud.py',
      [
        'import os, sys, time',
        'def test_loud():',
        '    for i in range(8):',
        '        sys.stdout.write(("x" * 1023 + "\\n") * 1024)',
        '        sys.stdout.flush()',
        '    print("THE LAST LINE", flush=True)',
        '    deadline = time.monotonic() + 30',
        '    while os.fstat(1).st_blocks * 512 > 1024 * 1024 and time.monotonic() < deadline:',
        '        time.sleep(0.02)',
        '    assert os.fstat(1).st_blocks * 512 <= 1024 * 1024',
      ].join('\n'),
    );
    const r = await runWarm([python, '-m', 'pytest', '-q', '-s', '-p', 'no:cacheprovider', 'loud/test_loud.py']);
    expect(r.output.text()).toContain('THE LAST LINE');
    expect(r.exitCode).toBe(0);
    const dropped = /\[fleet\] (\d+) bytes of this file's earlier output were dropped \(it is kept under 1048576 bytes\)/.exec(r.output.text());
    expect(dropped).not.toBeNull();
    // All but the last 256 KiB (at most) of the 8 MiB went.
    expect(Number(dropped?.[1])).toBeGreaterThan(8 * 1024 * 1024 - 300 * 1024);
  }, 60_000);

  it('runs each file in its folder with its own environment and import path, as `python -m pytest` does', async () => {
    file('pkg/helper_mod.py', 'VALUE = 7\n');
    file(
      'pkg/test_env.py',
      [
        'import os, sys',
        'import helper_mod',
        'def test_env():',
        '    assert helper_mod.VALUE == 7',
        '    assert os.environ["FLEET_ONLY_HERE"] == os.environ["EXPECTED_VALUE"]',
        '    assert os.getcwd() == os.environ["EXPECTED_CWD"]',
        '    assert sys.path[0] == os.environ["EXPECTED_CWD"]',
        '    import __main__',
        '    assert __main__.__file__.endswith(os.path.join("pytest", "__main__.py")), __main__.__file__',
        '    assert not hasattr(__main__, "prepared")',
      ].join('\n'),
    );
    const cwd = join(dir, 'pkg');
    for (const value of ['first', 'second']) {
      const argv = argvFor('test_env.py');
      const req = { ...request(argv, { env: { FLEET_ONLY_HERE: value, EXPECTED_VALUE: value, EXPECTED_CWD: cwd } }), cwd };
      const r = await server.run(req, warmPytestPlan(argv, process.env, cwd));
      expect({ value, exit: r.exitCode, output: r.exitCode === 0 ? '' : r.output.text() }).toEqual({ value, exit: 0, output: '' });
    }
  }, 60_000);

  it('ends what a file forked or started when the file ends, and the server goes on', async () => {
    const forked = join(dir, 'forked.pid');
    const execd = join(dir, 'execd.pid');
    file('leaks/test_leaks.py', leakingPytestFile(forked, execd));
    const r = await runWarm(argvFor('leaks/test_leaks.py'));
    expect(r.exitCode).toBe(0);
    for (const pidFile of [forked, execd]) {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      await waitFor(() => !isAlive(pid), { what: `process ${pid} (${pidFile}) to be ended with its file`, timeoutMs: 5000 });
    }
    expect(server.alive && isAlive(server.pid)).toBe(true);
    expect((await runWarm(argvFor('verdicts/test_pass.py'))).exitCode).toBe(0);
  }, 60_000);

  it('stops a file on abort (one that ignores SIGTERM too) and stays usable', async () => {
    const started = join(dir, 'hang.started');
    file('hang/test_hang.py', hangingPytestFile(started));
    const abort = new AbortController();
    const running = runWarm(argvFor('hang/test_hang.py'), { signal: abort.signal });
    await waitFor(() => existsSync(started), { what: 'the hanging test to start', timeoutMs: 20_000 });
    abort.abort();
    const r = await running;
    expect(r).toMatchObject({ aborted: true, exitCode: 137 });
    expect(server.alive).toBe(true);
    expect((await runWarm(argvFor('verdicts/test_pass.py'))).exitCode).toBe(0);
  }, 60_000);

  const cgroupRoot = CgroupTree.detect();
  (cgroupRoot ? it : it.skip)(
    "puts each file's process in the attempt's cgroup",
    async () => {
      const parent = new CgroupTree(cgroupRoot as string).child(`fleet-warm-spec-${process.pid}`);
      try {
        file('cg/test_cgroup.py', ['def test_cgroup():', '    print("CGROUP", open("/proc/self/cgroup").read().strip())'].join('\n'));
        const r = await runWarm([python, '-m', 'pytest', '-q', '-s', '-p', 'no:cacheprovider', 'cg/test_cgroup.py'], { cgroupParent: parent.dir });
        expect(r.exitCode).toBe(0);
        expect(r.output.text()).toMatch(new RegExp(`^(CGROUP )?0::.*/fleet-warm-spec-${process.pid}/t-[0-9a-f]{32}$`, 'm'));
      } finally {
        await waitFor(() => parent.remove(), { what: 'the test cgroup to empty', timeoutMs: 5000 });
      }
    },
    60_000,
  );

  it('ends the file with a clear message when its server dies midway, keeps its output, leaves no output file behind, and the pool starts a new one', async () => {
    const started = join(dir, 'victim.started');
    // The test writes where its output goes (its stdout's path) before it waits.
    file(
      'victim/test_victim.py',
      [
        'import os, time',
        'def test_waits():',
        '    print("OUTPUT BEFORE THE END", flush=True)',
        `    open(${JSON.stringify(started)}, "w").write(os.readlink("/proc/self/fd/1"))`,
        '    time.sleep(300)',
      ].join('\n'),
    );
    const own = await pool.acquire(plan(argvFor('x.py')).interpreter);
    if (!own) throw new Error('no second server');
    // -s: the test's prints go to the file's own output file as it prints them (pytest's capture would hold them).
    const argv = [python, '-m', 'pytest', '-q', '-s', '-p', 'no:cacheprovider', 'victim/test_victim.py'];
    let filePid = 0;
    const running = own.run({ ...request(argv), onStart: (tree) => (filePid = tree.pgid) }, plan(argv));
    await waitFor(() => existsSync(started), { what: 'the test to start', timeoutMs: 20_000 });
    process.kill(own.pid, 'SIGKILL');
    const r = await running;
    expect(r.exitCode).not.toBe(0);
    expect(r.output.text()).toContain('the warm pytest server ended while this file ran');
    expect(r.output.text()).toContain('OUTPUT BEFORE THE END');
    // The file's output file and the dead server's folder for them are gone.
    const outputFile = readFileSync(started, 'utf8');
    expect(outputFile.startsWith(tmpdir())).toBe(true);
    expect(existsSync(outputFile)).toBe(false);
    expect(existsSync(join(outputFile, '..'))).toBe(false);
    await waitFor(() => !isAlive(filePid), { what: `the orphaned file process ${filePid} to end`, timeoutMs: 5000 });
    pool.release(plan(argv).interpreter, own);
    const fresh = await pool.acquire(plan(argv).interpreter);
    expect(fresh && fresh !== own && fresh.alive).toBe(true);
    if (fresh) pool.release(plan(argv).interpreter, fresh);
  }, 60_000);

  it('removes its output folder when the pool closes, before the server has exited', async () => {
    const where = join(dir, 'closing.out');
    file(
      'closing/test_closing.py',
      ['import os', 'def test_where():', `    open(${JSON.stringify(where)}, "w").write(os.readlink("/proc/self/fd/1"))`].join('\n'),
    );
    const closing = new WarmServerPool({ env: process.env, maxIdle: 2 });
    const argv = [python, '-m', 'pytest', '-q', '-s', '-p', 'no:cacheprovider', 'closing/test_closing.py'];
    const own = await closing.acquire(plan(argv).interpreter);
    if (!own) throw new Error('no server');
    expect((await own.run(request(argv), plan(argv))).exitCode).toBe(0);
    closing.release(plan(argv).interpreter, own);
    const folder = join(readFileSync(where, 'utf8'), '..');
    expect(folder.startsWith(tmpdir())).toBe(true);
    // Named by its host and worker, so that a later worker can tell it from a live worker's (the sweep below).
    expect(basename(folder).startsWith(outDirStem(hostname(), process.pid))).toBe(true);
    expect(existsSync(folder)).toBe(true);
    closing.close();
    // At once: a worker that exits after closing its pool never sees its servers end.
    expect(existsSync(folder)).toBe(false);
    await waitFor(() => !own.alive, { what: 'the closed server to end', timeoutMs: 10_000 });
  }, 60_000);

  it("removes the output folders of this host's dead workers, and keeps a live worker's and another host's", () => {
    const base = mkdtempSync(join(tmpdir(), 'sweep-spec-'));
    const dead = spawnSync('true').pid;
    const live = process.ppid;
    const host = 'ci-node.1';
    // A host's dashes become underscores in the name, so that the pid after it is found unambiguously.
    const made = {
      dead: `fleet-out-ci_node.1-${dead}-abc123`,
      live: `fleet-out-ci_node.1-${live}-def456`,
      other: `fleet-out-elsewhere-${dead}-ghi789`,
      unrelated: `fleet-outside-${dead}`,
    };
    for (const name of Object.values(made)) {
      mkdirSync(join(base, name));
      writeFileSync(join(base, name, 'attempt.out'), 'output');
    }
    expect(sweepStaleOutputDirs(base, host)).toEqual([made.dead]);
    expect(existsSync(join(base, made.dead))).toBe(false);
    for (const name of [made.live, made.other, made.unrelated]) expect(existsSync(join(base, name, 'attempt.out'))).toBe(true);
  });

  it('retires a server once a package is installed or removed where pytest was imported from', async () => {
    // pytest imported from a folder of this test's own (a link to the real package), so the test can "install".
    const site = mkdtempSync(join(tmpdir(), 'warm-site-'));
    const real = spawnSync(python, ['-c', 'import os, pytest; print(os.path.dirname(os.path.realpath(pytest.__file__)))'], { encoding: 'utf8' });
    symlinkSync(real.stdout.trim(), join(site, 'pytest'));
    const interpreter = plan(argvFor('x.py')).interpreter;
    const own = new WarmServerPool({ env: { ...process.env, PYTHONPATH: site }, maxIdle: 1 });
    try {
      const first = await own.acquire(interpreter);
      expect(first?.current).toBe(true);
      own.release(interpreter, first as WarmServer);
      expect(await own.acquire(interpreter)).toBe(first);
      own.release(interpreter, first as WarmServer);
      mkdirSync(join(site, 'some_plugin-1.0.dist-info'));
      const second = await own.acquire(interpreter);
      expect(second && second !== first && second.current).toBe(true);
      await waitFor(() => !first?.alive, { what: 'the retired server to exit', timeoutMs: 5000 });
      own.release(interpreter, second as WarmServer);
    } finally {
      own.close();
    }
  }, 60_000);

  it('keeps at most its limit of idle servers in all, least recently used out first, and ends idle ones', async () => {
    // Three interpreters (links to this Python, as a virtualenv per checkout would be), two idle servers at most.
    const executable = spawnSync(python, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim();
    const interpreters = ['a', 'b', 'c'].map((name) => {
      mkdirSync(join(dir, 'venvs', name), { recursive: true });
      const link = join(dir, 'venvs', name, 'python3');
      symlinkSync(executable, link);
      return link;
    });
    const bounded = new WarmServerPool({ env: process.env, maxIdle: 2 });
    const servers: WarmServer[] = [];
    try {
      for (const interpreter of interpreters) {
        const s = await bounded.acquire(interpreter);
        if (!s) throw new Error(`no server for ${interpreter}`);
        servers.push(s);
        bounded.release(interpreter, s);
        expect(bounded.idleCount).toBeLessThanOrEqual(2);
      }
      // The least recently used (a's) went when c's came back; b's and c's are kept for their next files.
      await waitFor(() => !servers[0].alive, { what: "a's server to end", timeoutMs: 5000 });
      expect(servers.slice(1).map((s) => s.alive)).toEqual([true, true]);
      expect(await bounded.acquire(interpreters[1])).toBe(servers[1]);
      bounded.release(interpreters[1], servers[1]);
    } finally {
      bounded.close();
    }
    // Left idle past idleMs, a server ends.
    const brief = new WarmServerPool({ env: process.env, maxIdle: 2, idleMs: 200 });
    try {
      const s = await brief.acquire(interpreters[0]);
      if (!s) throw new Error('no server');
      brief.release(interpreters[0], s);
      await waitFor(() => !s.alive && brief.idleCount === 0, { what: 'the idle server to end', timeoutMs: 10_000 });
    } finally {
      brief.close();
    }
  }, 60_000);

  it('refuses an interpreter that cannot import pytest, saying why', async () => {
    const refusals: string[] = [];
    const other = new WarmServerPool({ env: process.env, maxIdle: 1, onRefused: (interpreter, why) => refusals.push(`${interpreter}: ${why}`) });
    expect(await other.acquire('/bin/false')).toBeUndefined();
    expect(refusals).toEqual([expect.stringMatching(/^\/bin\/false: exited \(1\)/)]);
    other.close();
  });
});
