import { jest } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseJUnit } from '@fleet/runs';
import { isAlive, sessionHarness, testFolder, waitFor } from '@fleet/testing';
import { readJUnitReport } from './junit-report.js';
import { runProcess } from './process-runner.js';
import { CgroupTree, ownCgroupDir } from './process-tree.js';
import { nodeTestPlan } from './warm-node-session.js';
import { WarmServerPool, WarmServer } from './warm-python.js';

// Real Node processes; every wait inside is bounded by the code under test or by waitFor.
jest.setTimeout(60_000);

const { dir, file } = testFolder('node-session-spec-');
/** `node` with a JUnit report at `junit`, for `test`. */
const argvFor = (test: string, junit?: string, ...extra: string[]) => [
  'node',
  ...extra,
  ...(junit ? ['--test-reporter=junit', `--test-reporter-destination=${junit}`] : []),
  test,
];

const { firstPids, request, pool, inSession, reset } = sessionHarness(dir, argvFor);
afterAll(() => pool.close());
beforeEach(reset);

describe('nodeTestPlan', () => {
  const plan = (argv: string[], junit?: string) => nodeTestPlan(argv, process.env, dir, 'a.test.mjs', junit)?.flags;
  it('takes the file, --test and the JUnit reporter out of the options, and refuses what a session cannot reproduce', () => {
    expect(plan(['node', '--test-reporter=junit', '--test-reporter-destination=/r/j.xml', 'a.test.mjs'], '/r/j.xml')).toEqual([]);
    expect(
      plan(['node', '--test', '--import', 'tsx', '--test-reporter', 'junit', '--test-reporter-destination', '/r/j.xml', 'a.test.mjs'], '/r/j.xml'),
    ).toEqual(['--import', 'tsx']);
    expect(plan(['node', '--enable-source-maps', 'a.test.mjs'])).toEqual(['--enable-source-maps']);
    // Another reporter, a report asked for but not written (or written and not asked for), the file not last or
    // named twice, arguments after it, watching, evaluating, another program.
    expect(plan(['node', '--test-reporter=spec', 'a.test.mjs'])).toBeUndefined();
    expect(plan(['node', 'a.test.mjs'], '/r/j.xml')).toBeUndefined();
    expect(plan(['node', '--test-reporter=junit', '--test-reporter-destination=/r/j.xml', 'a.test.mjs'])).toBeUndefined();
    expect(plan(['node', 'a.test.mjs', '--x'])).toBeUndefined();
    expect(
      plan(['node', '--env-file=/r/j.xml', '--test-reporter=junit', '--test-reporter-destination=/r/j.xml', 'a.test.mjs'], '/r/j.xml'),
    ).toBeUndefined();
    expect(plan(['node', 'a.test.mjs', 'a.test.mjs'])).toBeUndefined();
    expect(plan(['node', '--watch', 'a.test.mjs'])).toBeUndefined();
    expect(plan(['node', '-e', '1', 'a.test.mjs'])).toBeUndefined();
    expect(plan(['bun', 'a.test.mjs'])).toBeUndefined();
  });
});

describe('a node test session', () => {
  it('runs file after file in one process, each with the exit code and the JUnit cases a cold node run gives it', async () => {
    file('verdicts/pass.test.mjs', "import { test } from 'node:test';\ntest('one', () => {});\ntest('two', async () => {});\n");
    file(
      'verdicts/fail.test.mjs',
      [
        "import { describe, it, test } from 'node:test';",
        "import assert from 'node:assert/strict';",
        "test('bad', () => { console.log('the value was', 41); assert.equal(41, 42); });",
        "describe('group', () => { it('inner passes', () => {}); it('inner fails', () => { throw new Error('nope'); }); });",
        "test('skipped', { skip: 'not here' }, () => {});",
      ].join('\n'),
    );
    file('verdicts/broken.test.mjs', 'import { nothing } from "./no-such-module.mjs";\n');
    file(
      'verdicts/hook.test.mjs',
      "import { before, test } from 'node:test';\nbefore(() => { throw new Error('setup failed'); });\ntest('t', () => {});\n",
    );
    const cases = async (path: string) => {
      const report = await readJUnitReport(path, parseJUnit);
      return (report.cases ?? []).map((c) => ({ name: c.name, status: c.status }));
    };
    for (const name of ['pass', 'fail', 'broken', 'hook', 'pass']) {
      const junitWarm = join(dir, `${name}.session.xml`);
      const junitCold = join(dir, `${name}.cold.xml`);
      const warm = await inSession(`verdicts/${name}.test.mjs`, junitWarm);
      const cold = await runProcess(request(argvFor(`verdicts/${name}.test.mjs`, junitCold)));
      expect({ name, exit: warm.exitCode, started: warm.started }).toEqual({ name, exit: cold.exitCode, started: true });
      expect(await cases(junitWarm)).toEqual(await cases(junitCold));
      if (name === 'fail') {
        expect(await cases(junitWarm)).toEqual([
          { name: 'bad', status: 'failed' },
          { name: 'skipped', status: 'skipped' },
          { name: 'group › inner passes', status: 'passed' },
          { name: 'group › inner fails', status: 'failed' },
        ]);
        expect(warm.output.text()).toContain('the value was 41');
      }
      if (name === 'broken') expect(warm.output.text()).toContain('no-such-module.mjs');
      if (name === 'hook') expect(warm.output.text()).toContain('setup failed');
    }
    // One server ran them all (every other attempt was a cold process of its own).
    const sessionPids = firstPids.filter((_, i) => i % 2 === 0);
    expect(new Set(sessionPids).size).toBe(1);
    expect(isAlive(sessionPids[0])).toBe(true);
  });

  it('gives each file its environment, folder and output, scopes its top-level hooks to it, and loads it afresh', async () => {
    file('fresh/helper.cjs', 'module.exports = { seen: [] };\n');
    file(
      'fresh/state.test.cjs',
      [
        "const { test, beforeEach } = require('node:test');",
        "const assert = require('node:assert/strict');",
        "const helper = require('./helper.cjs');",
        'const runs = [];',
        'globalThis.hooksRun = 0;',
        'beforeEach(() => { globalThis.hooksRun++; });',
        "test('once', () => {",
        '  runs.push(1); helper.seen.push(1);',
        '  assert.equal(runs.length, 1); assert.equal(helper.seen.length, 1);',
        "  console.log('VALUE', process.env.SESSION_SPEC_VALUE, process.cwd());",
        '});',
      ].join('\n'),
    );
    // A file after it: the first file's beforeEach must not run for this one's tests.
    file(
      'fresh/after.test.mjs',
      "import { test } from 'node:test';\ntest('no foreign hook', () => { if (globalThis.hooksRun !== 1) throw new Error(`hooks run: ${globalThis.hooksRun}`); });\n",
    );
    for (const value of ['first', 'second']) {
      const r = await inSession('fresh/state.test.cjs', undefined, { env: { SESSION_SPEC_VALUE: value } });
      expect({ exit: r.exitCode, output: r.output.text() }).toEqual({ exit: 0, output: `VALUE ${value} ${dir}\n` });
      expect((await inSession('fresh/after.test.mjs')).exitCode).toBe(0);
    }
    expect(new Set(firstPids).size).toBe(1);
  });

  it('ends what a file started when the file ends, and the server goes on', async () => {
    const pidFile = join(dir, 'leaked.pid');
    file(
      'leaks/leak.test.mjs',
      [
        "import { test } from 'node:test';",
        "import { spawn } from 'node:child_process';",
        "import { writeFileSync } from 'node:fs';",
        "test('leaves a process', () => {",
        "  const p = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });",
        '  p.unref();',
        `  writeFileSync(${JSON.stringify(pidFile)}, String(p.pid));`,
        '});',
      ].join('\n'),
    );
    expect((await inSession('leaks/leak.test.mjs')).exitCode).toBe(0);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => !isAlive(pid), { what: `process ${pid} to be ended with its file`, timeoutMs: 5000 });
    expect((await inSession('verdicts/pass.test.mjs')).exitCode).toBe(0);
    expect(new Set(firstPids).size).toBe(1);
    expect(isAlive(firstPids[0])).toBe(true);
  });

  it('fails a file that ends the process, and the next file gets a new server', async () => {
    file('exits/exit.test.mjs', "import { test } from 'node:test';\ntest('exits', () => { process.exit(7); });\n");
    const r = await inSession('exits/exit.test.mjs');
    expect(r.exitCode).not.toBe(0);
    expect(r.output.text()).toContain('the node test session ended while this file ran');
    expect((await inSession('verdicts/pass.test.mjs')).exitCode).toBe(0);
    expect(firstPids[1]).not.toBe(firstPids[0]);
  });

  it('stops a hanging file on abort, the server with it, and the next file gets a new server', async () => {
    const started = join(dir, 'hang.started');
    file(
      'hang/hang.test.mjs',
      [
        "import { test } from 'node:test';",
        "import { writeFileSync } from 'node:fs';",
        "test('hangs', async () => {",
        "  process.on('SIGTERM', () => undefined);",
        `  writeFileSync(${JSON.stringify(started)}, '1');`,
        '  await new Promise((r) => setTimeout(r, 300_000));',
        '});',
      ].join('\n'),
    );
    const abort = new AbortController();
    const running = inSession('hang/hang.test.mjs', undefined, { signal: abort.signal });
    await waitFor(() => existsSync(started), { what: 'the hanging test to start', timeoutMs: 20_000 });
    abort.abort();
    expect(await running).toMatchObject({ aborted: true, exitCode: 137 });
    await waitFor(() => !isAlive(firstPids[0]), { what: 'the stopped server to end', timeoutMs: 5000 });
    expect((await inSession('verdicts/pass.test.mjs')).exitCode).toBe(0);
    expect(firstPids[1]).not.toBe(firstPids[0]);
  });

  it('ends a server after its set number of files (the ES modules it imported stay loaded), and the next file gets a new one', async () => {
    const short = new WarmServerPool({ env: process.env, maxIdle: 1, home: ownCgroupDir(), nodeSessionFiles: 2 });
    try {
      for (let i = 0; i < 3; i++)
        expect((await short.run(request(argvFor('verdicts/pass.test.mjs')), { file: 'verdicts/pass.test.mjs' })).exitCode).toBe(0);
      expect(firstPids[1]).toBe(firstPids[0]);
      expect(firstPids[2]).not.toBe(firstPids[0]);
      await waitFor(() => !isAlive(firstPids[0]), { what: 'the server that ran its two files to end', timeoutMs: 5000 });
    } finally {
      short.close();
    }
  });

  it('runs a file cold, with the verdict node gives it, when its session cannot start', async () => {
    const starts = jest.spyOn(WarmServer, 'startNodeSession');
    try {
      const broken = ['--import', './no-such-preload.mjs'];
      const warm = await inSession('verdicts/pass.test.mjs', undefined, {}, ...broken);
      const cold = await runProcess(request(argvFor('verdicts/pass.test.mjs', undefined, ...broken)));
      expect(warm.exitCode).toBe(cold.exitCode);
      expect(warm.exitCode).not.toBe(0);
      expect(warm.output.text()).toContain('no-such-preload.mjs');
      expect(starts).toHaveBeenCalledTimes(1);
    } finally {
      starts.mockRestore();
    }
  });

  const cgroupRoot = CgroupTree.detect();
  (cgroupRoot && ownCgroupDir() ? it : it.skip)("runs each file in the attempt's cgroup and goes back to its own after", async () => {
    const parent = new CgroupTree(cgroupRoot as string).child(`fleet-node-session-spec-${process.pid}`);
    try {
      file(
        'cg/cgroup.test.mjs',
        "import { test } from 'node:test';\nimport { readFileSync } from 'node:fs';\ntest('cg', () => { console.log(readFileSync('/proc/self/cgroup', 'utf8').trim()); });\n",
      );
      const r = await inSession('cg/cgroup.test.mjs', undefined, { cgroupParent: parent.dir });
      expect(r.exitCode).toBe(0);
      expect(r.output.text()).toMatch(new RegExp(`^0::.*/fleet-node-session-spec-${process.pid}/t-[0-9a-f]{32}$`, 'm'));
      expect(readFileSync(`/proc/${firstPids[0]}/cgroup`, 'utf8').trim()).toBe(readFileSync('/proc/self/cgroup', 'utf8').trim());
    } finally {
      await waitFor(() => parent.remove(), { what: 'the test cgroup to empty', timeoutMs: 5000 });
    }
  });
});
