import { XMLParser } from 'fast-xml-parser';
import { buildJUnit } from './junit-build.js';
import { parseJUnit } from './junit-parse.js';
import { countFiles, etaSeconds, fileResult, type RunAttempt, runState } from './run-outcome.js';
import { parseRunRequest } from './run-request.js';
import { expectedDurations, hashSplitMakespanMs, idealMakespanMs, longestFirst, timingSplit } from './shard-order.js';

const NODE_JUNIT = `<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testcase name="passes" time="0.000800" classname="test"/>
  <testcase name="fails" time="0.000840" classname="test" failure="x"><failure type="testCodeFailure" message="1 !== 2">AssertionError: 1 !== 2
    at file:///t.mjs:4:28</failure></testcase>
  <testcase name="skipped" time="0.000088" classname="test"><skipped type="skipped" message="true"/></testcase>
  <testsuite name="math" time="0.000270" tests="1"><testcase name="adds" time="0.000090" classname="test"/></testsuite>
</testsuites>`;

const PYTEST_JUNIT = `<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="0" skipped="0" tests="2">
<testcase classname="tests.test_db.TestDb" name="test_connect" time="0.012"/>
<testcase classname="tests.test_db.TestDb" name="test_fixture" time="0.001"><error message="fixture 'db' not found">E fixture 'db' not found</error></testcase>
</testsuite></testsuites>`;

describe('parseJUnit', () => {
  it("reads node's report: top-level cases, a describe block folded into the name, statuses and messages", () => {
    expect(parseJUnit(NODE_JUNIT).map((c) => [c.name, c.status, c.message ?? null])).toEqual([
      ['passes', 'passed', null],
      ['fails', 'failed', '1 !== 2'],
      ['skipped', 'skipped', 'true'],
      ['math › adds', 'passed', null],
    ]);
    expect(parseJUnit(NODE_JUNIT)[1]?.output).toMatch(/AssertionError: 1 !== 2/);
  });

  it("reads pytest's: its one suite names nothing, classnames kept, errors told from failures", () => {
    expect(parseJUnit(PYTEST_JUNIT).map((c) => [c.classname, c.name, c.status])).toEqual([
      ['tests.test_db.TestDb', 'test_connect', 'passed'],
      ['tests.test_db.TestDb', 'test_fixture', 'error'],
    ]);
  });

  it('keeps at most 2,000 cases and bounded messages', () => {
    const many = `<testsuites>${Array.from({ length: 2500 }, (_, i) => `<testcase name="c${i}"><failure message="${'m'.repeat(2000)}"/></testcase>`).join('')}</testsuites>`;
    const cases = parseJUnit(many);
    expect(cases).toHaveLength(2000);
    expect(cases[0]?.message?.length).toBeLessThanOrEqual(513);
  });
});

const attempt = (a: Partial<RunAttempt> & Pick<RunAttempt, 'attempt' | 'status'>): RunAttempt => ({
  key: 'f.mjs',
  final: true,
  duration_ms: 100,
  worker_id: 'w',
  started_at: 0,
  finished_at: 100,
  ...a,
});
const noQuarantine = () => false;

describe('fileResult and the verdict', () => {
  it('a file that failed, then passed on its retry, is flaky and passes; its case keeps the earlier failure', () => {
    const f = fileResult(
      'f.mjs',
      { id: 'cpu.1', pool: 'cpu' },
      [attempt({ attempt: 1, status: 'failed', final: false, message: 'boom', reason: 'test_failed' }), attempt({ attempt: 2, status: 'passed' })],
      undefined,
      noQuarantine,
    );
    expect(f.state).toBe('flaky');
    expect(f.cases[0]).toMatchObject({ flaky: true, earlier_failures: [{ attempt: 1, message: 'boom' }] });
    expect(runState([f], false)).toBe('passed');
  });

  it('cases: the one that failed then passed is flaky, the others are not', () => {
    const cases1 = [
      { name: 'a', classname: 'c', time_s: 0, status: 'passed' as const },
      { name: 'b', classname: 'c', time_s: 0, status: 'failed' as const, message: 'x' },
    ];
    const cases2 = cases1.map((c) => ({ ...c, status: 'passed' as const }));
    const f = fileResult(
      'f.mjs',
      { id: 'i', pool: 'cpu' },
      [attempt({ attempt: 1, status: 'failed', final: false, cases: cases1 }), attempt({ attempt: 2, status: 'passed', cases: cases2 })],
      undefined,
      noQuarantine,
    );
    expect(f.cases.map((c) => [c.name, c.flaky])).toEqual([
      ['a', false],
      ['b', true],
    ]);
  });

  it.each([
    ['every file passed', ['passed', 'passed'], [], false, 'passed'],
    ['a file failed', ['passed', 'failed'], [], false, 'failed'],
    ['a file could not run', ['error', 'failed'], [], false, 'error'],
    ['the failing file is quarantined', ['passed', 'failed'], ['b.mjs'], false, 'passed'],
    ['one still running', ['passed', 'running'], [], false, 'running'],
    ['none started', ['queued', 'blocked'], [], false, 'queued'],
    ['cancelled', ['passed', 'cancelled'], [], true, 'cancelled'],
  ] as const)('%s → %s', (_name, states, quarantined, cancelled, expected) => {
    const files = states.map((s, i) => {
      const key = `${'ab'[i]}.mjs`;
      const done = ['passed', 'failed', 'error'].includes(s);
      return fileResult(
        key,
        { id: key, pool: 'cpu' },
        done ? [attempt({ key, attempt: 1, status: s as RunAttempt['status'] })] : [],
        done ? undefined : (s as 'running'),
        (id) => (quarantined as readonly string[]).includes(id),
      );
    });
    expect(runState(files, cancelled)).toBe(expected);
    expect(countFiles(files).total).toBe(2);
  });

  it('a file that ran no test is skipped: it counts as done, passes the run and releases its dependents; its one case says skipped', () => {
    const skipped = fileResult(
      's.py',
      { id: 's', pool: 'cpu' },
      [attempt({ key: 's.py', attempt: 1, status: 'passed', skipped: true })],
      undefined,
      noQuarantine,
    );
    const passed = fileResult('p.py', { id: 'p', pool: 'cpu' }, [attempt({ key: 'p.py', attempt: 1, status: 'passed' })], undefined, noQuarantine);
    expect([skipped.state, skipped.cases.map((c) => c.status)]).toEqual(['skipped', ['skipped']]);
    expect(countFiles([skipped, passed])).toMatchObject({ total: 2, done: 2, skipped: 1, passed: 1 });
    expect(runState([skipped, passed], false)).toBe('passed');
    // Flaky wins: a file that failed first and then found nothing to run is flaky, not skipped.
    const flaky = fileResult(
      'f.py',
      { id: 'f', pool: 'cpu' },
      [
        attempt({ key: 'f.py', attempt: 1, status: 'failed', final: false, reason: 'test_failed' }),
        attempt({ key: 'f.py', attempt: 2, status: 'passed', skipped: true }),
      ],
      undefined,
      noQuarantine,
    );
    expect(flaky.state).toBe('flaky');
  });

  it('ETA: what is left over the slots, never less than the longest file left', () => {
    expect(etaSeconds([{ expectedMs: 10_000 }, { expectedMs: 10_000 }, { expectedMs: 4000, runningForMs: 3000 }], 2)).toBe(11);
    expect(etaSeconds([{ expectedMs: 60_000 }, { expectedMs: 1000 }], 8)).toBe(60);
    expect(etaSeconds([], 2)).toBe(0);
    expect(etaSeconds([{ expectedMs: 1 }], 0)).toBeNull();
  });
});

describe('buildJUnit', () => {
  it('keeps out what XML 1.0 forbids: colour codes are dropped, other control characters replaced, so CI servers can read a failing run', () => {
    const output = '\u001b[31mexpected 1\u001b[0m, got \u001b[1;32m2\u001b[0m\u0007\u0000 \ud800 done';
    const failing = fileResult(
      'c.mjs',
      { id: 'c', pool: 'cpu' },
      [attempt({ key: 'c.mjs', attempt: 1, status: 'failed', reason: 'test_failed', message: '\u001b[31mboom\u001b[0m', output_tail: output })],
      undefined,
      noQuarantine,
    );
    const xml = buildJUnit({ id: 'run-2', name: 'colours', created_at: 0, labels: { note: 'tab\there' }, files: [failing] });
    // eslint-disable-next-line no-control-regex
    expect(xml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])/);
    const failure = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml).testsuites.testsuite.testcase.failure;
    expect(failure.message).toBe('boom');
    expect(failure['#text']).toBe('expected 1, got 2\ufffd\ufffd \ufffd done');
  });

  it('writes one document Jenkins and GitLab read: a suite per file, cases with failure, skipped, flakyFailure; totals add up', () => {
    const flaky = fileResult(
      'b.mjs',
      { id: 'b', pool: 'cpu' },
      [
        attempt({ key: 'b.mjs', attempt: 1, status: 'failed', final: false, message: 'first' }),
        attempt({ key: 'b.mjs', attempt: 2, status: 'passed' }),
      ],
      undefined,
      noQuarantine,
    );
    const node = fileResult(
      'a.mjs',
      { id: 'a', pool: 'cpu' },
      [attempt({ key: 'a.mjs', attempt: 1, status: 'failed', reason: 'test_failed', cases: parseJUnit(NODE_JUNIT) })],
      undefined,
      noQuarantine,
    );
    const xml = buildJUnit({ id: 'run-1', name: 'nightly', created_at: 0, labels: { commit: 'abc' }, files: [node, flaky] });
    const doc = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      isArray: (n) => ['testsuite', 'testcase', 'flakyFailure', 'property'].includes(n),
    }).parse(xml);
    const root = doc.testsuites;
    expect(root).toMatchObject({ name: 'nightly', tests: '5', failures: '1', errors: '0', skipped: '1' });
    expect(root.properties.property).toEqual([
      { name: 'run_id', value: 'run-1' },
      { name: 'commit', value: 'abc' },
    ]);
    const [a, b] = root.testsuite;
    expect(a.testcase.map((c: { name: string; classname: string }) => [c.classname, c.name])).toEqual([
      ['a.mjs', 'passes'],
      ['a.mjs', 'fails'],
      ['a.mjs', 'skipped'],
      ['a.mjs', 'math › adds'],
    ]);
    expect(a.testcase[1].failure.message).toBe('1 !== 2');
    expect(b.testcase[0].flakyFailure[0].message).toBe('first');
    expect(b.testcase[0].failure).toBeUndefined();
  });
});

describe('parseRunRequest', () => {
  it('accepts files, folders and globs; refuses what could climb out or read as an option', () => {
    expect(parseRunRequest({ name: 'r', tests: ['tests/', 'tests/**/*.test.mjs', 'a.mjs', 'x/{a,b}.mjs'] }).ok).toBe(true);
    for (const bad of ['../x', '/abs/*.mjs', '-r', 'a/../../b', '.hidden/*', 'a/.git/x']) {
      const r = parseRunRequest({ name: 'r', tests: [bad] });
      expect([bad, r.ok ? 'ok' : r.errors[0]?.field]).toEqual([bad, 'tests[0]']);
    }
  });

  it('refuses dependencies on unknown tasks, on itself, and in a circle', () => {
    const r = parseRunRequest({
      name: 'r',
      tests: ['a.mjs'],
      tasks: [
        { key: 'a', type: 'synthetic', name: 'a', depends_on: ['b'] },
        { key: 'b', type: 'synthetic', name: 'b', depends_on: ['a'] },
        { key: 'c', type: 'synthetic', name: 'c', depends_on: ['nope', 'c'] },
      ],
    });
    expect(r.ok ? [] : r.errors.map((e) => e.reason)).toEqual([
      'no task "nope" in this run (use "*" for every test file)',
      'a task cannot wait for itself',
      'dependencies go round in a circle: a → b → a',
    ]);
  });

  it('refuses tests that wait for a task that waits, through others, for the tests ("*"): the run could never start', () => {
    const r = parseRunRequest({
      name: 'r',
      tests: ['a.mjs'],
      tests_depend_on: ['setup'],
      tasks: [
        { key: 'setup', type: 'synthetic', name: 'setup', depends_on: ['prepare'] },
        { key: 'prepare', type: 'synthetic', name: 'prepare', depends_on: ['report'] },
        { key: 'report', type: 'synthetic', name: 'report', depends_on: ['*'] },
      ],
    });
    expect(r.ok ? [] : r.errors).toEqual([
      { field: 'tests_depend_on[0]', reason: '"setup" waits for the tests itself (setup → prepare → report → *)' },
    ]);
  });
});

describe('ordering by history', () => {
  it('longest first gets a skewed suite close to the ideal on 4 slots, where a hash split does not', () => {
    const files = Array.from({ length: 200 }, (_, i) => ({ key: `t${i}.mjs`, expectedMs: i < 4 ? 20_000 : 500 + (i % 7) * 100 }));
    const ideal = idealMakespanMs(
      files.map((f) => f.expectedMs),
      4,
    );
    // Simulate 4 slots pulling from one queue in the given order.
    const makespan = (order: typeof files) => {
      const slots = [0, 0, 0, 0];
      for (const f of order) {
        const i = slots.indexOf(Math.min(...slots));
        slots[i] = slots[i] + f.expectedMs;
      }
      return Math.max(...slots);
    };
    expect(ideal / makespan(longestFirst(files))).toBeGreaterThan(0.95);
    expect(ideal / hashSplitMakespanMs(files, 4)).toBeLessThan(ideal / makespan(longestFirst(files)));
  });

  it("files without history: their folder's median, else their size at the suite's ms per byte, else the median", () => {
    const est = expectedDurations(
      [
        { key: 'slow/a.mjs', historyMs: 9000, bytes: 100 },
        { key: 'slow/b.mjs', historyMs: 11_000, bytes: 300 },
        { key: 'slow/deep/new.mjs', historyMs: null, bytes: 10 }, // nearest folder with history: slow/
        { key: 'fast/a.mjs', historyMs: 100, bytes: 100 },
        { key: 'other/new.mjs', historyMs: null, bytes: 200 }, // no folder history: 200 B × median ms/B (90, 36.7, 1)
        { key: 'other/unsized.mjs', historyMs: null }, // nothing but the suite's median
      ],
      1000,
    );
    expect(est.map(Math.round)).toEqual([9000, 11_000, 10_000, 100, 7333, 9000]);
    // With no history at all, the largest files go first (the default time scaled by size against the median size).
    const cold = expectedDurations(
      [
        { key: 'a.mjs', historyMs: null, bytes: 100 },
        { key: 'b.mjs', historyMs: null, bytes: 400 },
        { key: 'c.mjs', historyMs: null, bytes: 200 },
      ],
      1000,
    );
    expect(cold).toEqual([500, 2000, 1000]);
    expect(expectedDurations([{ key: 'x.mjs', historyMs: null }], 1000)).toEqual([1000]);
  });

  it('a split by timings balances the expected totals, and keeps every file once', () => {
    const files = Array.from({ length: 60 }, (_, i) => ({ key: `t${i}.mjs`, expectedMs: i < 3 ? 3000 : 100 + (i % 9) * 50 }));
    const shards = timingSplit(files, 3);
    expect(
      shards
        .flat()
        .map((f) => f.key)
        .sort(),
    ).toEqual(files.map((f) => f.key).sort());
    const sums = shards.map((s) => s.reduce((t, f) => t + f.expectedMs, 0));
    // Greedy by longest first: no shard is more than one file's time above another.
    expect(Math.max(...sums) - Math.min(...sums)).toBeLessThanOrEqual(3000);
    // Each long file went to its own shard.
    expect(shards.map((s) => s.filter((f) => f.expectedMs === 3000).length)).toEqual([1, 1, 1]);
  });
});
