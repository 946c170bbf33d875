// A suite of many short test files, run through the fleet (one task per file, a run) against the test
// runner's own parallel mode with the same number of slots: `node --test --test-concurrency=<slots>`, or
// `pytest -n <slots>` (pytest-xdist). Both write a JUnit report; both must reach the same verdicts. Ratio = the
// runner's wall time ÷ the fleet's (above 1: the fleet is faster). The fleet's first run has no history; the
// later ones are ordered by it.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { deleteMatching, FleetKeys } from '@fleet/redis';
import { median, oneWorkerFleet, until } from './bench-support.js';

const FINAL = new Set(['passed', 'failed', 'cancelled', 'error']);

/** File i: a few small tests (string work, a JSON round trip, a short await), like a unit-test file; one in 25 fails. */
function testFile(i: number): string {
  const fails = i % 25 === 7;
  return [
    "import { test } from 'node:test';",
    "import assert from 'node:assert/strict';",
    `test('formats ${i}', () => { const s = Array.from({ length: 200 }, (_, k) => (k * ${i + 1}).toString(36)).join(','); assert.ok(s.length > 0); });`,
    `test('round-trips ${i}', () => { const o = { id: ${i}, tags: ['a', 'b'], nested: { n: ${i} } }; assert.deepEqual(JSON.parse(JSON.stringify(o)), o); });`,
    `test('waits ${i}', async () => { await new Promise((r) => setTimeout(r, ${(i % 5) * 4})); assert.equal(${fails ? 1 : 0}, 0); });`,
    '',
  ].join('\n');
}

/** The same kind of file for pytest: a few small tests, one file in 25 fails. */
function pyTestFile(i: number): string {
  const fails = i % 25 === 7;
  return [
    'import json',
    'import time',
    '',
    `def test_formats_${i}():`,
    `    s = ','.join(format(k * ${i + 1}, 'x') for k in range(200))`,
    '    assert len(s) > 0',
    '',
    `def test_round_trips_${i}():`,
    `    o = {'id': ${i}, 'tags': ['a', 'b'], 'nested': {'n': ${i}}}`,
    '    assert json.loads(json.dumps(o)) == o',
    '',
    `def test_waits_${i}():`,
    `    time.sleep(${(i % 5) * 4} / 1000)`,
    `    assert ${fails ? 1 : 0} == 0`,
    '',
  ].join('\n');
}

/** The Python with pytest and pytest-xdist (Debian's python3-pytest-xdist), or undefined. */
export function pythonWithXdist(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', 'import pytest, xdist'], { stdio: 'ignore' }).status === 0) return py;
  }
  return undefined;
}

const spawnTimed = (argv: string[], cwd: string) =>
  new Promise<{ ms: number; code: number | null }>((resolve) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { cwd, stdio: 'ignore' });
    child.on('exit', (code) => resolve({ ms: performance.now() - t0, code }));
  });

const verdicts = (xml: string) => ({ cases: (xml.match(/<testcase /g) ?? []).length, failures: (xml.match(/<failure /g) ?? []).length });

export async function shortSuite(opts: {
  redis: Redis;
  url: string;
  dist: (...p: string[]) => string;
  files: number;
  slots: number;
  reps: number;
  log: (m: string) => void;
  /** Node flags for the fleet's processes (BENCH_PROFILE). */
  nodeFlags: string[];
  /** `node` (node --test) by default; `pytest` needs the Python `pythonWithXdist` finds. */
  runner?: 'node' | 'pytest';
  python?: string;
  /**
   * `runners.warm`. pytest: true (the default) forks each file from a warm Python; 'session' runs each inside one
   * pytest session per slot; false runs every file cold (a Python and pytest started per file). node: 'session'
   * runs each inside one Node test session per slot; otherwise (the default) each file is a node process of its own.
   */
  warm?: boolean | 'session';
}) {
  const pytest = opts.runner === 'pytest';
  const py = opts.python ?? 'python3';
  const prefix = `bench-${process.pid}-suite${pytest ? '-py' : ''}${opts.warm === 'session' ? '-session' : ''}`;
  const dir = mkdtempSync(join(tmpdir(), 'fleet-suite-'));
  mkdirSync(join(dir, 'suite'));
  const names = Array.from({ length: opts.files }, (_, i) =>
    pytest ? `suite/test_t${String(i).padStart(3, '0')}.py` : `suite/t${String(i).padStart(3, '0')}.test.mjs`,
  );
  names.forEach((n, i) => writeFileSync(join(dir, n), pytest ? pyTestFile(i) : testFile(i)));
  // pytest's cache folder is left out on both sides (the fleet's attempts would race on it).
  const pytestArgs = [py, '-m', 'pytest', '-q', '-p', 'no:cacheprovider'];
  // One pool of `slots` (one worker): each file runs in a runner process of its own, with a JUnit report.
  writeFileSync(
    join(dir, 'worker_templates.json'),
    JSON.stringify({
      suite: {
        resources: { cpu: 1 },
        concurrency: opts.slots,
        runners: {
          test: pytest
            ? { '.py': [...pytestArgs, '--junitxml={junit_file}', '{test_file}'] }
            : { '.mjs': ['node', '--test-reporter=junit', '--test-reporter-destination={junit_file}', '{test_file}'] },
          ...(pytest && opts.warm !== undefined && opts.warm !== true && { warm: { '.py': opts.warm } }),
          ...(!pytest && opts.warm === 'session' && { warm: { '.mjs': 'session' } }),
        },
      },
    }),
  );
  const fleet = await oneWorkerFleet({ ...opts, prefix, dir, pool: 'suite' });
  const { api, base } = fleet;
  const fleetRun = async () => {
    const t0 = Date.now();
    const { id } = await api<{ id: string }>('POST', '/runs', { name: `short ${pytest ? 'pytest' : 'node'} suite`, tests: ['suite/'] });
    const view = await until(
      async () => {
        const v = await api<{ state: string; finished_at: string | null }>('GET', `/runs/${id}`);
        return FINAL.has(v.state) && v.finished_at !== null ? v : undefined;
      },
      'the run to finish',
      300_000,
      100,
    );
    // From submission to the run's own verdict (not to when this loop happened to look), and from the last
    // file's end (its attempt's record) to that verdict: what finalizing costs.
    const finishedAt = Date.parse(view.finished_at ?? '');
    // (The hash's `_` and `_finals` fields are the run's own, not attempts.)
    const attempts = Object.entries(await opts.redis.hgetall(new FleetKeys(prefix).runAttempts(id)))
      .filter(([field]) => !field.startsWith('_'))
      .map(([, a]) => JSON.parse(a) as { started_at: number; finished_at: number });
    const lastFileEnd = Math.max(...attempts.map((a) => a.finished_at));
    const firstStart = Math.min(...attempts.map((a) => a.started_at));
    const busy = attempts.reduce((sum, a) => sum + (a.finished_at - a.started_at), 0);
    const xml = await (await fetch(`${base}/runs/${id}/junit.xml`)).text();
    return {
      ms: finishedAt - t0,
      run_end_ms: finishedAt - lastFileEnd,
      // Submission → the first file's start, and the files' own time (start → end, summed) per slot.
      first_start_ms: firstStart - t0,
      file_ms_per_slot: busy / opts.slots,
      state: view.state,
      ...verdicts(xml),
    };
  };
  const peerRun = async () => {
    const out = join(dir, 'peer.xml');
    const r = await spawnTimed(
      pytest
        ? [...pytestArgs, '-n', String(opts.slots), `--junitxml=${out}`, 'suite']
        : ['node', '--test', `--test-concurrency=${opts.slots}`, '--test-reporter=junit', `--test-reporter-destination=${out}`, ...names],
      dir,
    );
    return { ms: r.ms, state: r.code === 0 ? 'passed' : 'failed', ...verdicts(readFileSync(out, 'utf8')) };
  };
  try {
    const fleet: Array<Awaited<ReturnType<typeof fleetRun>>> = [];
    const peer: Array<Awaited<ReturnType<typeof peerRun>>> = [];
    for (let r = 0; r < opts.reps; r++) {
      for (const kind of r % 2 ? (['fleet', 'peer'] as const) : (['peer', 'fleet'] as const)) {
        if (kind === 'fleet') fleet.push(await fleetRun());
        else peer.push(await peerRun());
        const last = fleet.at(-1);
        opts.log(
          kind === 'fleet' && last
            ? `short suite fleet #${r + 1}: ${last.ms.toFixed(0)} ms (first file started at ${last.first_start_ms} ms; the files' own time per slot ${last.file_ms_per_slot.toFixed(0)} ms)`
            : `short suite peer #${r + 1}: ${(peer.at(-1)?.ms ?? 0).toFixed(0)} ms`,
        );
      }
    }
    const f = fleet.at(-1);
    const p = peer.at(-1);
    const later = fleet.slice(1).map((x) => x.ms);
    const runnerMs = median(peer.map((x) => x.ms));
    return {
      runner: pytest ? 'pytest' : 'node',
      warm: opts.warm ?? pytest,
      files: opts.files,
      slots: opts.slots,
      /** The fleet's first run (no history yet) and its later runs (ordered by history), with their ratios. */
      first_s: (fleet[0]?.ms ?? NaN) / 1000,
      first_ratio: runnerMs / (fleet[0]?.ms ?? NaN),
      history_s: later.length > 0 ? median(later) / 1000 : null,
      history_ratio: later.length > 0 ? runnerMs / median(later) : null,
      fleet_s: median(fleet.map((x) => x.ms)) / 1000,
      runner_s: median(peer.map((x) => x.ms)) / 1000,
      ratio: median(peer.map((x) => x.ms)) / median(fleet.map((x) => x.ms)),
      /** The last file's end → the run's verdict (ms), median over the fleet's runs. */
      run_end_ms: median(fleet.map((x) => x.run_end_ms)),
      same_verdicts: f?.state === p?.state && f?.cases === p?.cases && f?.failures === p?.failures,
      verdicts: { fleet: f, runner: p },
      goal: 1,
    };
  } finally {
    await fleet.stop();
    await deleteMatching(opts.redis, `${prefix}:*`);
    rmSync(dir, { recursive: true, force: true });
  }
}
