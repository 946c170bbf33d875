import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  childProcesses,
  cpuTemplate,
  distEntry,
  isolatedSuite,
  pytestSessionTemplate,
  pythonWithPytest,
  type Service,
  waitFor,
} from '@fleet/testing';

interface RunView {
  state: string;
  counts: Record<string, number>;
  files: Array<{ key: string; state: string; reason: string | null; cases: Array<{ name: string; status: string; message?: string }> }>;
}

// The test's own process: a fork of a warm server keeps the server's command line (`python -c <server>`); a cold
// run is a Python of its own (`python -m pytest`), whoever started it (the worker, or its launcher: `python3 -c`).
const WHERE = [
  'import os',
  'def test_where():',
  '    with open("/proc/self/cmdline", "rb") as f:',
  '        me = f.read().split(b"\\0")[:2]',
  '    with open("/proc/%d/comm" % os.getppid()) as f:',
  '        parent = f.read().strip()',
  '    with open("where-%s.txt" % os.environ["FLEET_TASK_ID"].replace("/", "_"), "w") as f:',
  '        f.write("%d %s parent=%s" % (os.getpid(), " ".join(p.decode() for p in me), parent))',
  '',
].join('\n');

/** A node test file that writes its process's pid where the test can read it, and one test that passes or fails. */
const nodeFile = (passes: boolean) =>
  [
    "import { test } from 'node:test';",
    "import { writeFileSync } from 'node:fs';",
    "writeFileSync(`nodepid-${process.env.FLEET_TASK_ID.replaceAll('/', '_')}.txt`, String(process.pid));",
    `test('adds', () => { if (1 + 1 !== ${passes ? 2 : 3}) throw new Error('1 + 1 is 2'); });`,
  ].join('\n');

/** The py/ files' verdicts, however they run: a module that skips itself is skipped, not failed. */
const PY_STATES = { 'py/test_skips_itself.py': 'skipped', 'py/test_passes.py': 'passed', 'py/test_fails.py': 'failed' };

describe("runner conventions: a runner's exit code means what the runner says it means", () => {
  const python = pythonWithPytest();
  const suite = isolatedSuite('conventions', {
    'worker_templates.json': {
      cpu: cpuTemplate({
        concurrency: 2,
        runners: {
          test: {
            '.py': [python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--junitxml={junit_file}', '{test_file}'],
            '.sh': ['sh', '{test_file}'],
          },
          // This runner says 3 when it found nothing to run.
          exit_codes: { '.sh': { '3': 'skipped' } },
        },
      }),
      // The same pytest runner with warm servers turned off: every file starts its own Python.
      coldpy: cpuTemplate({
        concurrency: 1,
        capabilities: ['COLDPY'],
        runners: { test: { '.py': [python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '{test_file}'] }, warm: { '.py': false } },
      }),
      // The same runner, each file inside one pytest session per slot.
      sessionpy: pytestSessionTemplate(python, 'SESSIONPY'),
      // Node test files, each inside one Node test session per slot.
      sessionnode: cpuTemplate({
        concurrency: 1,
        capabilities: ['SESSIONNODE'],
        runners: {
          test: { '.mjs': ['node', '--test-reporter=junit', '--test-reporter-destination={junit_file}', '{test_file}'] },
          warm: { '.mjs': 'session' },
        },
      }),
    },
    'node/pass.test.mjs': nodeFile(true),
    'node/fail.test.mjs': nodeFile(false),
    // Writes what started its process (its parent's command line) where the test can read it.
    'where/test_one.py': WHERE,
    'where/test_two.py': WHERE,
    'py/test_skips_itself.py': 'import pytest\npytest.skip("needs a GPU", allow_module_level=True)\n\ndef test_never():\n    assert False\n',
    'py/test_passes.py': 'def test_adds():\n    assert 1 + 1 == 2\n',
    'py/test_fails.py': 'def test_adds():\n    assert 1 + 1 == 3\n',
    'sh/nothing.sh': 'echo "no test here"\nexit 3\n',
    'sh/broken.sh': 'exit 4\n',
  });
  let coordinator: Service;
  let sessionWorker: { pid: number };
  let nodeWorker: { pid: number };
  /** The worker's Node test session, once the first node test has seen it. */
  let nodeSessionPid: number | undefined;

  beforeAll(async () => {
    coordinator = await suite.service('coordinator', { RUNS_TICK_MS: '200' });
    suite.worker({ pool: 'cpu', id: 'w1' });
    suite.worker({ pool: 'coldpy', id: 'w2' });
    sessionWorker = suite.worker({ pool: 'sessionpy', id: 'w3' });
    nodeWorker = suite.worker({ pool: 'sessionnode', id: 'w4' });
  });

  /** Runs `tests` on `pool` and returns the run once it has its verdict. */
  async function finishedRun(tests: string[], pool: string): Promise<RunView & { id: string }> {
    const created = await coordinator.http
      .post('/runs')
      .send({ name: `conventions on ${pool}`, tests, pool })
      .expect(201);
    return waitFor(
      async () => {
        const r = (await coordinator.http.get(`/runs/${created.body.id}`).expect(200)).body as RunView & { finished_at: string | null };
        return r.finished_at !== null ? { ...r, id: created.body.id as string } : undefined;
      },
      { what: `the run on ${pool} to finish`, timeoutMs: 120_000, intervalMs: 200 },
    );
  }

  /** Runs where/ on `pool` and returns what its two files reported of their processes. */
  async function processesOf(pool: string): Promise<string[]> {
    expect((await finishedRun(['where/'], pool)).state).toBe('passed');
    return takeWhereFiles();
  }

  /** What the test files wrote to the suite's folder in files named `<prefix>…`, removed once read. */
  function takeWritten(prefix: string): string[] {
    const dir = suite.config.path;
    const files = readdirSync(dir).filter((f) => f.startsWith(prefix));
    const texts = files.map((f) => readFileSync(join(dir, f), 'utf8'));
    for (const f of files) rmSync(join(dir, f));
    return texts;
  }
  /** What the where/ files wrote (their own process: pid and command). */
  const takeWhereFiles = () => takeWritten('where-');
  /** The pids the node/ files wrote. */
  const takeNodePids = () => takeWritten('nodepid-');

  it("runs pytest files warm (forked from the slot's Python that imported pytest) unless the template turns it off; cold, through the worker's launcher", async () => {
    const warm = await processesOf('cpu');
    expect(warm).toHaveLength(2);
    // Forked by a warm server: the file runs in a copy of a Python started with `-c` (the server's program).
    for (const p of warm) expect(p).toMatch(/^\d+ \S*python[\d.]* -c parent=python/);
    const cold = await processesOf('coldpy');
    expect(cold).toHaveLength(2);
    // Cold: a Python started for the file, running pytest as the template says, by the worker's launcher (a
    // Python: WORKER_LAUNCHER=auto), not by the worker's own Node process.
    for (const p of cold) expect(p).toMatch(/^\d+ \S*python[\d.]* -m parent=python/);
  });

  it('runs pytest files inside one pytest session per slot when the template says "session", with the verdicts of a file run alone', async () => {
    // The worker started its slot's session server at boot, before any file of its pool was submitted.
    const workerPid = sessionWorker.pid;
    const ahead = await waitFor(
      () => {
        // (A Python with `-c` and the template's options: not the worker's launcher, also a Python with `-c`.)
        const servers = childProcesses(workerPid).filter((p) => /python[\d.]* -c /.test(p.cmd) && p.cmd.includes('no:cacheprovider'));
        return servers.length > 0 ? servers : undefined;
      },
      { what: 'the session server the worker starts at boot', timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(ahead).toHaveLength(1);
    const inSession = await processesOf('sessionpy');
    expect(inSession).toHaveLength(2);
    // ... and the files ran in it.
    expect(inSession[0].split(' ')[0]).toBe(String(ahead[0].pid));
    // Both files ran in one process, the session server the worker started (a Python with `-c`, whose parent is
    // the worker, not a Python that forked it).
    expect(new Set(inSession.map((p) => p.split(' ')[0])).size).toBe(1);
    for (const p of inSession) expect(p).toMatch(/^\d+ \S*python[\d.]* -c parent=(?!python)/);
    const run = await finishedRun(['py/'], 'sessionpy');
    expect(Object.fromEntries(run.files.map((f) => [f.key, f.state]))).toEqual(PY_STATES);
    const withCases = (await coordinator.http.get(`/runs/${run.id}?cases=true`).expect(200)).body as RunView;
    expect(withCases.files.find((f) => f.key === 'py/test_fails.py')?.cases).toEqual([
      expect.objectContaining({ name: 'test_adds', status: 'failed' }),
    ]);
  });

  it('runs node test files inside one Node test session per slot when the template says "session", with the verdicts and cases of a file run alone', async () => {
    // The worker started its slot's session server at boot (a node with `-e`), before any file was submitted.
    const ahead = await waitFor(
      () => {
        const servers = childProcesses(nodeWorker.pid).filter((p) => p.cmd.includes('--input-type=module'));
        return servers.length > 0 ? servers : undefined;
      },
      { what: 'the node test session the worker starts at boot', timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(ahead).toHaveLength(1);
    const run = await finishedRun(['node/'], 'sessionnode');
    const withCases = (await coordinator.http.get(`/runs/${run.id}?cases=true`).expect(200)).body as RunView;
    nodeSessionPid = ahead[0].pid;
    // The verdicts and cases of files run alone, and both files ran in that one process (all in one expectation,
    // so a failure shows every part: the files' reasons and the processes they ran in).
    expect({ files: withCases.files.map((f) => ({ key: f.key, state: f.state, reason: f.reason, cases: f.cases })), pids: takeNodePids() }).toEqual({
      files: expect.arrayContaining([
        expect.objectContaining({ key: 'node/pass.test.mjs', state: 'passed' }),
        expect.objectContaining({ key: 'node/fail.test.mjs', state: 'failed', cases: [expect.objectContaining({ name: 'adds', status: 'failed' })] }),
      ]),
      pids: [String(ahead[0].pid), String(ahead[0].pid)],
    });
    expect(withCases.files).toHaveLength(2);
  });

  it("pytest's no-tests exit and a declared code are skipped, not failed; other codes still fail", async () => {
    const run = await finishedRun(['py/', 'sh/'], 'cpu');
    const states = Object.fromEntries(run.files.map((f) => [f.key, f.state]));
    expect(states).toEqual({
      ...PY_STATES,
      'sh/nothing.sh': 'skipped',
      'sh/broken.sh': 'failed',
    });
    expect(run.counts).toMatchObject({ total: 5, done: 5, skipped: 2, passed: 1, failed: 2 });
    // The file's view says why it counts as skipped.
    const withCases = (await coordinator.http.get(`/runs/${run.id}?cases=true`).expect(200)).body as RunView;
    const nothing = withCases.files.find((f) => f.key === 'sh/nothing.sh');
    expect(nothing?.cases).toEqual([expect.objectContaining({ status: 'skipped', message: 'the runner ran no test (exit 3)' })]);
    expect(run.state).toBe('failed');
  });

  /** Runs `tests` as a CI build's one node (`fleet run --build`) in this suite's folder; its exit code and run. */
  async function ciNodeRun(tests: string[], build: string, slots: number, pool: string): Promise<{ code: number | null; run: RunView }> {
    const cli = spawn(process.execPath, [distEntry('cli'), 'run', ...tests, '--build', build, '--slots', String(slots), '--pool', pool], {
      cwd: suite.config.path,
      env: { ...process.env, COORDINATOR_URL: coordinator.url },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    cli.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const code = await new Promise<number | null>((resolve) => cli.on('exit', resolve));
    const id = /run (r-[a-z0-9-]+)/.exec(stderr)?.[1];
    return { code, run: (await coordinator.http.get(`/runs/${id}`).expect(200)).body as RunView };
  }

  it("reads exit codes the same way on CI nodes (fleet run --build) as on the pool's workers", async () => {
    // This checkout is the suite's folder; the node runs every file itself.
    const { code, run } = await ciNodeRun(['py/', 'sh/', 'where/'], 'conventions-ci', 2, 'cpu');
    expect(code).toBe(1);
    expect(Object.fromEntries(run.files.map((f) => [f.key, f.state]))).toEqual({
      ...PY_STATES,
      'sh/nothing.sh': 'skipped',
      'sh/broken.sh': 'failed',
      'where/test_one.py': 'passed',
      'where/test_two.py': 'passed',
    });
    expect(run.counts).toMatchObject({ total: 7, skipped: 2, passed: 3, failed: 2 });
    // The node ran its pytest files warm too: each in a fork of its warm server.
    const processes = takeWhereFiles();
    expect(processes).toHaveLength(2);
    for (const p of processes) expect(p).toMatch(/^\d+ \S*python[\d.]* -c parent=python/);
  });

  it('runs pytest files in one session per slot on CI nodes too when the pool says "session"', async () => {
    const { code, run } = await ciNodeRun(['py/', 'where/'], 'conventions-ci-session', 1, 'sessionpy');
    expect(code).toBe(1);
    expect(Object.fromEntries(run.files.map((f) => [f.key, f.state]))).toEqual({
      ...PY_STATES,
      'where/test_one.py': 'passed',
      'where/test_two.py': 'passed',
    });
    // Both where/ files ran in the node's one session server (a Python with `-c` the node started).
    const processes = takeWhereFiles();
    expect(processes).toHaveLength(2);
    expect(new Set(processes.map((p) => p.split(' ')[0])).size).toBe(1);
    for (const p of processes) expect(p).toMatch(/^\d+ \S*python[\d.]* -c parent=(?!python)/);
  });

  it('runs node test files in one Node test session per slot on CI nodes too when the pool says "session"', async () => {
    takeNodePids();
    const { code, run } = await ciNodeRun(['node/'], 'conventions-ci-node-session', 1, 'sessionnode');
    expect(code).toBe(1);
    expect(Object.fromEntries(run.files.map((f) => [f.key, f.state]))).toEqual({ 'node/pass.test.mjs': 'passed', 'node/fail.test.mjs': 'failed' });
    // Both files ran in one process, a node the CI node started, not the worker's session.
    const pids = takeNodePids();
    expect(pids).toHaveLength(2);
    expect(new Set(pids).size).toBe(1);
    expect(pids[0]).not.toBe(String(nodeSessionPid));
  });
});
