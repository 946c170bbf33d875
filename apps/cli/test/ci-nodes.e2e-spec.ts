import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { cpuTemplate, distEntry, isolatedSuite, NODE_JUNIT, pytestSessionTemplate, pythonWithPytest, type Service, waitFor } from '@fleet/testing';
import { freePort } from '../../../scripts/lib/redis-server.mjs';

/** A test file that notes each run of itself (file and attempt) in RAN_LOG, then does what `body` says. */
const testFile = (name: string, body: string) =>
  `import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { appendFileSync } from 'node:fs';\n` +
  `appendFileSync(process.env.RAN_LOG, ${JSON.stringify(name)} + ' ' + process.env.FLEET_ATTEMPT + '\\n');\n${body}\n`;
const waits = (name: string, ms: number) =>
  testFile(name, `test('works', async () => { await new Promise((r) => setTimeout(r, ${ms})); assert.ok(true); });`);

/** A skewed 60-file suite: two long files, a spread of short ones, one failing file and one flaky file. */
function suite60(): Record<string, string> {
  const files: Record<string, string> = {};
  const put = (name: string, body: (n: string) => string) => (files[name] = body(name));
  put('tests/long-a.test.mjs', (n) => waits(n, 1500));
  put('tests/long-b.test.mjs', (n) => waits(n, 1200));
  for (let i = 0; i < 56; i++) put(`tests/t${String(i).padStart(2, '0')}.test.mjs`, (n) => waits(n, (i % 8) * 25));
  put('tests/failing.test.mjs', (n) => testFile(n, "test('adds', () => assert.equal(1 + 1, 3));"));
  put('tests/flaky.test.mjs', (n) =>
    testFile(n, "test('settles', () => assert.notEqual(process.env.FLEET_ATTEMPT, '1', 'fails on its first attempt'));"),
  );
  return files;
}

const B2_FILES = ['tests/t0*.test.mjs', 'tests/t1*.test.mjs', 'tests/failing.test.mjs', 'tests/long-a.test.mjs'];

interface Node {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

describe('CI nodes as workers: fleet run --build', () => {
  const files = suite60();
  const python = pythonWithPytest();
  const suite = isolatedSuite('ci-nodes', {
    'worker_templates.json': {
      ci: cpuTemplate({ concurrency: 2, runners: { test: { '.mjs': NODE_JUNIT } } }),
      cipy: pytestSessionTemplate(python, 'CIPY'),
    },
  });
  let coordinator: Service;
  let ranLog: string;

  /** A node's own copy of the suite (as a CI job's checkout). */
  const checkout = (name: string): string => {
    const dir = join(suite.config.path, 'nodes', name);
    for (const [f, body] of Object.entries(files)) {
      mkdirSync(join(dir, f, '..'), { recursive: true });
      writeFileSync(join(dir, f), body);
    }
    return dir;
  };

  const node = (cwd: string, args: string[], patterns = ['tests/']): Node => {
    const child = spawn(process.execPath, [distEntry('cli'), 'run', ...patterns, ...args], {
      cwd,
      env: { ...process.env, COORDINATOR_URL: coordinator.url, RAN_LOG: ranLog },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const n: Node = { child, stdout: '', stderr: '', exited: new Promise((r) => child.on('exit', (code) => r(code))) };
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (n.stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (n.stderr += s));
    suite.onCleanup(() => child.exitCode === null && child.kill('SIGKILL'));
    return n;
  };

  /** Every run of a test file so far, as `<file> <attempt>`, in order. */
  const ranSoFar = () => readFileSync(ranLog, 'utf8').split('\n').filter(Boolean);

  beforeAll(async () => {
    // Leases long enough that a busy machine renews them in time: then each attempt runs once (a lost lease
    // would run the file again elsewhere: at least once, as the guarantee says).
    coordinator = await suite.service('coordinator', { RUNS_TICK_MS: '200', CI_LEASE_MS: '10000', CI_NODES_GONE_MS: '8000' });
    ranLog = join(suite.config.path, 'ran.log');
    writeFileSync(ranLog, '');
  });

  it('three nodes run one 60-file run: each file once (the flaky one twice), one verdict, the whole JUnit on every node', async () => {
    const dirs = ['n0', 'n1', 'n2'].map((n) => checkout(join('b1', n)));
    const nodes = dirs.map((cwd, i) =>
      node(cwd, [
        '--build',
        'b1',
        '--node-index',
        String(i),
        '--node-total',
        '3',
        '--slots',
        '2',
        '--retries',
        '1',
        '--junit',
        join(cwd, 'junit.xml'),
      ]),
    );
    const codes = await Promise.all(nodes.map((n) => n.exited));
    expect(codes).toEqual([1, 1, 1]);
    // One run for the build, whichever node came first.
    const ids = nodes.map((n) => /run (r-[a-z0-9-]+)/.exec(n.stderr)?.[1]);
    expect(new Set(ids).size).toBe(1);
    for (const n of nodes) expect(n.stdout).toMatch(/: FAILED[\s\S]*FAILED tests\/failing\.test\.mjs[\s\S]*flaky[\s\S]*tests\/flaky\.test\.mjs/);

    // Each file ran once, whichever node ran it; the flaky and the failing file twice (the run asks for a retry).
    const counts = new Map<string, number>();
    for (const l of ranSoFar().map((l) => l.split(' ')[0])) counts.set(l, (counts.get(l) ?? 0) + 1);
    expect(counts.size).toBe(60);
    for (const [f, n] of counts) expect([f, n]).toEqual([f, f === 'tests/flaky.test.mjs' || f === 'tests/failing.test.mjs' ? 2 : 1]);
    // Work was shared: every node ran some files.
    for (const n of nodes) expect(n.stderr).toMatch(/this node ran [1-9]\d* attempt/);

    // The JUnit file is the whole run's, the same on every node, checked case by case.
    const parser = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      isArray: (n) => ['testsuite', 'testcase', 'flakyFailure'].includes(n),
    });
    const docs = dirs.map((d) => readFileSync(join(d, 'junit.xml'), 'utf8'));
    type Case = { name: string; classname: string; failure?: unknown; flakyFailure?: unknown[] };
    const cases = (xml: string) =>
      (parser.parse(xml) as { testsuites: { testsuite: Array<{ name: string; testcase?: Case[] }> } }).testsuites.testsuite.flatMap((s) =>
        (s.testcase ?? []).map((c) => ({ file: s.name, failed: c.failure !== undefined, flaky: (c.flakyFailure ?? []).length > 0 })),
      );
    const first = cases(docs[0] ?? '');
    expect(first).toHaveLength(60);
    for (const c of first) {
      expect(c).toEqual({ file: c.file, failed: c.file === 'tests/failing.test.mjs', flaky: c.file === 'tests/flaky.test.mjs' });
    }
    for (const d of docs.slice(1)) expect(cases(d)).toEqual(first);
  });

  it('a node that joins after the end gets the verdict at once and runs nothing', async () => {
    const before = ranSoFar().length;
    const late = node(checkout(join('b1', 'late')), ['--build', 'b1', '--node-index', '0', '--node-total', '3']);
    expect(await late.exited).toBe(1);
    expect(late.stdout).toMatch(/: FAILED/);
    expect(ranSoFar().length).toBe(before);
  });

  it('--only-failed reruns only the files that failed in the earlier build', async () => {
    const before = ranSoFar().length;
    const rerun = node(checkout(join('b1r', 'n0')), ['--build', 'b1-retry', '--only-failed', 'b1', '--node-total', '1', '--slots', '2']);
    expect(await rerun.exited).toBe(1);
    expect(ranSoFar().slice(before)).toEqual(['tests/failing.test.mjs 1']);
    expect(rerun.stdout).toMatch(/1 file\(s\): 0 passed/);
  });

  it('a node SIGKILLed midway: the others run its files once its leases run out, and the verdict is still right', async () => {
    const before = ranSoFar().length;
    const dirs = ['n0', 'n1', 'n2'].map((n) => checkout(join('b2', n)));
    const nodes = dirs.map((cwd, i) =>
      // 22 of the files (two CPU cores run every node): enough for the killed node to hold some.
      node(cwd, ['--build', 'b2', '--node-index', String(i), '--node-total', '3', '--slots', '2', '--retries', '1'], B2_FILES),
    );
    const victim = nodes[1];
    // Killed while it holds files: after it has started some and finished at least one.
    await waitFor(() => /✓/.test(victim.stderr), { what: 'node 1 to finish a file', timeoutMs: 60_000, intervalMs: 20 });
    victim.child.kill('SIGKILL');
    const codes = await Promise.all([nodes[0]?.exited, nodes[2]?.exited]);
    expect(codes).toEqual([1, 1]);
    const view = (await coordinator.http.get('/builds/b2').expect(200)).body as { state: string; counts: Record<string, number> };
    expect(view).toMatchObject({ state: 'failed', counts: { total: 22, failed: 1, error: 0, cancelled: 0, done: 22 } });
    // Every file ran to an end at least once; the ones the killed node held ran again elsewhere.
    const ran = new Set(
      ranSoFar()
        .slice(before)
        .map((l) => l.split(' ')[0]),
    );
    expect(ran.size).toBe(22);
  });

  it('a build whose nodes all died ends as error after CI_NODES_GONE_MS, not never', async () => {
    const only = node(checkout(join('b3', 'n0')), ['--build', 'b3', '--node-total', '1', '--slots', '1']);
    await waitFor(() => /✓/.test(only.stderr), { what: 'the node to finish a file', timeoutMs: 60_000, intervalMs: 20 });
    only.child.kill('SIGKILL');
    const ended = await waitFor(
      async () => {
        const v = (await coordinator.http.get('/builds/b3').expect(200)).body as {
          state: string;
          abandoned: string | null;
          finished_at: string | null;
        };
        return v.finished_at !== null ? v : undefined;
      },
      { what: 'build b3 to end', timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(ended).toMatchObject({ state: 'error', abandoned: expect.stringMatching(/nodes are gone/) });
  });

  it('a node rides out a coordinator that is not there yet (a restart): it joins once it answers, and serves the build', async () => {
    const port = String(await freePort());
    const cwd = checkout(join('b4', 'n0'));
    const child = spawn(process.execPath, [distEntry('cli'), 'run', 'tests/t0*.test.mjs', '--build', 'b4', '--slots', '2'], {
      cwd,
      env: { ...process.env, COORDINATOR_URL: `http://127.0.0.1:${port}`, RAN_LOG: ranLog },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    suite.onCleanup(() => child.exitCode === null && child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // The node is up and retrying before any coordinator listens on its URL.
    await waitFor(() => /not reachable[\s\S]*retrying for up to 60 s/.test(err), { what: 'the node to retry', timeoutMs: 10_000, intervalMs: 20 });
    const late = await suite.service('coordinator', { COORDINATOR_PORT: port, RUNS_TICK_MS: '200' });
    // The node's own account comes with a failure (it was one exit code 2 in a loaded CI run, cause unseen).
    expect([await exited, out, err]).toEqual([0, expect.stringMatching(/: PASSED[\s\S]*10 file\(s\): 10 passed/), expect.any(String)]);
    await late.http.get('/builds/b4').expect(200);
  });

  it("starts a pool's pytest sessions when it joins, one per slot, and its first files run in them", async () => {
    const dir = join(suite.config.path, 'nodes', 'py');
    mkdirSync(join(dir, 'py'), { recursive: true });
    const log = join(dir, 'where.log');
    // A session's start notes its process and the task it was started for (none when started ahead of any file).
    writeFileSync(
      join(dir, 'conftest.py'),
      `import os\nwith open(${JSON.stringify(log)}, 'a') as f:\n    f.write('session %d %s\\n' % (os.getpid(), os.environ.get('FLEET_TASK_ID', '-')))\n`,
    );
    for (const name of ['a', 'b'])
      writeFileSync(
        join(dir, 'py', `test_${name}.py`),
        `import os\n\ndef test_${name}():\n    with open(${JSON.stringify(log)}, 'a') as f:\n        f.write('file %d\\n' % os.getpid())\n`,
      );
    const n = node(dir, ['--build', 'bpy', '--node-total', '1', '--slots', '1', '--pool', 'cipy'], ['py/']);
    expect(await n.exited).toBe(0);
    expect(n.stderr).toMatch(/starting 1 pytest session server\(s\) ahead of the first files/);
    expect(n.stdout).toMatch(/2 file\(s\): 2 passed/);
    const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    const sessions = lines.filter((l) => l.startsWith('session '));
    // One session, started before any file was leased (no task in its environment), and both files ran in it.
    expect(sessions).toHaveLength(1);
    const [, pid, task] = (sessions[0] ?? '').split(' ');
    expect(task).toBe('-');
    expect(lines.filter((l) => l.startsWith('file '))).toEqual([`file ${pid}`, `file ${pid}`]);
  });

  it('refuses a bad join with the field and the reason, and a lease it does not hold', async () => {
    const bad = await coordinator.http
      .post('/builds/b9/nodes')
      .send({ node: 'x', node_index: 0, node_total: 1, slots: 0, tests: ['../etc/passwd'] })
      .expect(400);
    expect(bad.body.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: 'slots' }), expect.objectContaining({ field: 'tests[0]' })]),
    );
    await coordinator.http.post('/builds/never/leases').send({ node: 'x', want: 1 }).expect(404);

    // Only the lease's holder records the file: another token is refused and records nothing.
    await coordinator.http
      .post('/builds/b5/nodes')
      .send({ node: 'a', node_index: 0, node_total: 1, slots: 1, tests: ['tests/t00.test.mjs'] })
      .expect(200);
    await coordinator.http.post('/builds/b5/tasks/nope/renew').send({ node: 'x', token: 'aaaaaaaa-bbbb' }).expect(409);
    const [lease] = (await coordinator.http.post('/builds/b5/leases').send({ node: 'a', want: 1 }).expect(200)).body.leases as Array<{
      task_id: string;
      token: string;
    }>;
    const outcome = (token: string) =>
      coordinator.http.post(`/builds/b5/tasks/${lease?.task_id ?? ''}/outcome`).send({ node: 'b', token, status: 'passed', duration_ms: 5 });
    expect((await outcome('00000000-0000-0000-0000-000000000000').expect(409)).body.errors[0]).toMatchObject({ field: 'token' });
    expect((await coordinator.http.get('/builds/b5').expect(200)).body).toMatchObject({ counts: { done: 0 } });
    await outcome(lease?.token ?? '').expect(200);
    const ended = await waitFor(
      async () => {
        const v = (await coordinator.http.get('/builds/b5').expect(200)).body as { state: string; finished_at: string | null };
        return v.finished_at !== null ? v : undefined;
      },
      { what: 'build b5 to end', timeoutMs: 10_000, intervalMs: 50 },
    );
    expect(ended.state).toBe('passed');
  });
});
