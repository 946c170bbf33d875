// Runs at a commit against runs from a fixed workdir: the time from submitting a one-file run to its test
// starting, for a commit no host has (cold: the coordinator fetches and lists it, the worker fetches and checks
// it out), for one the host has (warm), and from a workdir; and the wall time of a 40-file run at a new commit
// against the same 40 files from a workdir. One worker of 2 slots; the repository is served as file://.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { deleteMatching, FleetKeys } from '@fleet/redis';
import { freePort, jsonApi, median, type Proc, run, until } from './bench-support.js';

const FINAL = new Set(['passed', 'failed', 'cancelled', 'error']);

function git(args: string[], cwd: string): string {
  const r = spawnSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@fleet.invalid', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

const testFile = (i: number) =>
  [
    "import { test } from 'node:test';",
    "import assert from 'node:assert/strict';",
    `test('works ${i}', async () => { await new Promise((r) => setTimeout(r, ${(i % 5) * 10})); assert.ok(true); });`,
    '',
  ].join('\n');

export async function sourcesBench(opts: {
  redis: Redis;
  url: string;
  dist: (...p: string[]) => string;
  files: number;
  reps: number;
  log: (m: string) => void;
}) {
  const prefix = `bench-${process.pid}-sources`;
  const dir = mkdtempSync(join(tmpdir(), 'fleet-bench-sources-'));
  const work = join(dir, 'work');
  mkdirSync(join(work, 'suite'), { recursive: true });
  for (let i = 0; i < opts.files; i++) writeFileSync(join(work, 'suite', `t${String(i).padStart(3, '0')}.test.mjs`), testFile(i));
  // A project-sized history to fetch: the suite plus a few hundred other files.
  mkdirSync(join(work, 'src'));
  for (let i = 0; i < 300; i++) writeFileSync(join(work, 'src', `m${i}.js`), `export const m${i} = ${JSON.stringify('x'.repeat(2000))};\n`);
  git(['init', '-q', '-b', 'main'], work);
  git(['add', '-A'], work);
  git(['commit', '-q', '-m', 'suite'], work);
  const bare = join(dir, 'repo.git');
  git(['init', '-q', '--bare', bare], dir);
  git(['push', '-q', bare, 'main'], work);
  const repo = `file://${bare}`;
  /** A commit no host has yet: one more change on main. */
  let n = 0;
  const newCommit = () => {
    writeFileSync(join(work, 'CHANGES'), String(++n));
    git(['add', '-A'], work);
    git(['commit', '-q', '-m', `change ${n}`], work);
    git(['push', '-q', bare, 'main'], work);
    return git(['rev-parse', 'HEAD'], work);
  };
  const runner = { '.mjs': ['node', '--test-reporter=dot', '{test_file}'] };
  writeFileSync(
    join(dir, 'worker_templates.json'),
    JSON.stringify({
      src: { resources: { cpu: 1 }, concurrency: 2, capabilities: ['SRC'], runners: { test: runner }, sources: [`file://${dir}/*`] },
      fixed: { resources: { cpu: 1 }, concurrency: 2, capabilities: ['FIXED'], workdir: work, runners: { test: runner } },
    }),
  );
  const env = {
    REDIS_URL: opts.url,
    FLEET_PREFIX: prefix,
    CONFIG_DIR: dir,
    RATE_LIMIT_PER_MINUTE: '1000000',
    RUNS_TICK_MS: '100',
    COORDINATOR_SOURCE_DIR: join(dir, 'coordinator-cache'),
    WORKER_SOURCE_DIR: join(dir, 'host-cache'),
  };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [
    run([opts.dist('apps', 'coordinator', 'src', 'main.js')], { ...env, COORDINATOR_PORT: String(port) }),
    run([opts.dist('apps', 'worker', 'src', 'main.js'), '--pool', 'src', '--id', 'src0'], env),
    run([opts.dist('apps', 'worker', 'src', 'main.js'), '--pool', 'fixed', '--id', 'fixed0'], env),
  ];
  const api = jsonApi(base);
  type View = { id: string; state: string; files: Array<{ task_id: string }> };
  const finish = (id: string) =>
    until(
      async () => {
        const v = await api<View>('GET', `/runs/${id}`);
        return FINAL.has(v.state) ? v : undefined;
      },
      'the run to finish',
      300_000,
      20,
    );
  /** Submit → the first (only) test's start, from the task's own start time. */
  const toStart = async (pool: string, source?: { repo: string; commit: string }) => {
    const t0 = Date.now();
    const { id } = await api<View>('POST', '/runs', { name: 'one', pool, tests: ['suite/t001.test.mjs'], ...(source && { source }) });
    const v = await finish(id);
    if (v.state !== 'passed') throw new Error(`the one-file run ended ${v.state}`);
    const task = await api<{ timings: { started_at: string } }>('GET', `/tasks/${v.files[0]?.task_id}`);
    return Date.parse(task.timings.started_at) - t0;
  };
  const whole = async (pool: string, source?: { repo: string; commit: string }) => {
    const t0 = performance.now();
    const { id } = await api<View>('POST', '/runs', { name: 'suite', pool, tests: ['suite/'], ...(source && { source }) });
    const v = await finish(id);
    if (v.state !== 'passed') throw new Error(`the ${opts.files}-file run ended ${v.state}`);
    return performance.now() - t0;
  };
  try {
    await until(async () => (await fetch(`${base}/health/ready`).catch(() => undefined))?.ok, 'the coordinator', 30_000, 50);
    await until(async () => (await opts.redis.zcard(new FleetKeys(prefix).workerIndex)) === 2, 'the workers', 30_000, 50);
    // One warm-up of each path (module caches, the first fork), not counted.
    await toStart('fixed');
    await toStart('src', { repo, commit: newCommit() });
    const cold: number[] = [];
    const warm: number[] = [];
    const fixed: number[] = [];
    const suiteAt: number[] = [];
    const suiteFixed: number[] = [];
    for (let r = 0; r < opts.reps; r++) {
      const commit = newCommit();
      cold.push(await toStart('src', { repo, commit }));
      warm.push(await toStart('src', { repo, commit }));
      fixed.push(await toStart('fixed'));
      opts.log(`sources #${r + 1}: submit → start cold ${cold.at(-1)} ms, warm ${warm.at(-1)} ms, workdir ${fixed.at(-1)} ms`);
      const order = r % 2 ? (['fixed', 'src'] as const) : (['src', 'fixed'] as const);
      for (const kind of order) {
        if (kind === 'src') suiteAt.push(await whole('src', { repo, commit: newCommit() }));
        else suiteFixed.push(await whole('fixed'));
      }
      opts.log(
        `sources #${r + 1}: ${opts.files}-file run at a new commit ${suiteAt.at(-1)?.toFixed(0)} ms, from a workdir ${suiteFixed.at(-1)?.toFixed(0)} ms`,
      );
    }
    return {
      files: opts.files,
      submit_to_start_ms: { cold: median(cold), warm: median(warm), workdir: median(fixed) },
      suite_s: { new_commit: median(suiteAt) / 1000, workdir: median(suiteFixed) / 1000 },
      ratio: median(suiteFixed) / median(suiteAt),
    };
  } finally {
    await Promise.all(procs.map((x) => x.stop()));
    await deleteMatching(opts.redis, `${prefix}:*`);
    rmSync(dir, { recursive: true, force: true });
  }
}
