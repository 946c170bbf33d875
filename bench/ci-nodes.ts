// CI nodes as workers: a skewed 60-file suite on 3 CI nodes × 2 slots. Dynamic: three `fleet run --build`
// processes, each with its own checkout, taking files from the build's queue (longest first by history) until
// none are left. Against the two static splits CI systems use, run for real on the same files with the same
// slots: by timings (CircleCI's --split-by=timings, Knapsack's regular mode) and by a hash of the path (Jest's
// --shard). Efficiency = ideal ÷ wall, ideal = max(longest file, (total + slot time before each node's start)
// ÷ 6 slots) over measured durations.
// CI jobs of one build do not start together (each waits for a runner and clones): the nodes start 0, 0.4
// and 0.8 s (× scale) apart, the same for all three ways. The split by timings is given exact history (the
// durations of the build before, as CircleCI has them), and each build's durations vary by up to ±30 %.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { repoRoot } from '@fleet/config';
import { deleteMatching, FleetKeys } from '@fleet/redis';
import { hashShard, idealMakespanMs, longestFirst, type Timed, timingSplit } from '@fleet/runs';
import { freePort, jsonApi, type Proc, run, until } from './bench-support.js';

const NODES = 3;
const SLOTS = 2;
/** When each node starts, after the first (ms, before scaling). */
const START_MS = [0, 400, 800];

/** File i's duration: four long files (more than one per node), last by name; the rest short and uneven. */
const durationMs = (i: number, files: number, scale: number) => Math.round((i >= files - 4 ? 3000 : 60 + ((i * 53) % 500)) * scale);

/** Runs a static shard as a node of its own (`static-shard.ts`) in `cwd`; resolves when it is done. */
function runShard(script: string, files: readonly string[], cwd: string, slots: number, startMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, String(slots), String(startMs), ...files], { cwd, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve());
  });
}

/**
 * Writes the suite's files into `dir` for one build: each file's base duration, varied by up to ±30 % per build
 * (seeded), as test times vary from one CI build to the next.
 */
function writeSuite(dir: string, keys: readonly string[], scale: number, seed: number): void {
  keys.forEach((key, i) => {
    const noise = 0.7 + (0.6 * (((i + 1) * 2654435761 * seed) % 1000)) / 1000;
    writeFileSync(join(dir, key), `#!/bin/sh\nsleep ${((durationMs(i, keys.length, scale) * noise) / 1000).toFixed(3)}\n`);
    chmodSync(join(dir, key), 0o755);
  });
}

export async function ciNodes(opts: { redis: Redis; url: string; dist: (...p: string[]) => string; scale: number; log: (m: string) => void }) {
  const FILES = 60;
  const prefix = `bench-${process.pid}-ci`;
  const dir = mkdtempSync(join(tmpdir(), 'fleet-ci-nodes-'));
  const suite = join(dir, 'checkout');
  mkdirSync(join(suite, 'tests'), { recursive: true });
  const keys = Array.from({ length: FILES }, (_, i) => `tests/f${String(i).padStart(2, '0')}.wait`);
  writeSuite(suite, keys, opts.scale, 1);
  // Each node its own copy of the checkout, as each CI job clones the repository.
  const checkouts = Array.from({ length: NODES }, (_, n) => {
    const at = join(dir, `node${n}`);
    cpSync(suite, at, { recursive: true });
    return at;
  });
  const config = join(dir, 'config');
  mkdirSync(config);
  writeFileSync(
    join(config, 'worker_templates.json'),
    JSON.stringify({ ci: { resources: { cpu: 1 }, runners: { test: { '.wait': ['./{test_file}'] } } } }),
  );
  writeFileSync(join(config, 'performance_analyzer_config.json'), JSON.stringify({ polling_interval: 60 }));
  const env = { REDIS_URL: opts.url, FLEET_PREFIX: prefix, CONFIG_DIR: config, RUNS_TICK_MS: '100', RATE_LIMIT_PER_MINUTE: '1000000' };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // The nodes run the client a CI job installs: the packed, bundled one (it starts in a tenth of the time of
  // the unbundled dist/apps/cli, which loads every lib's index).
  const packed = execFileSync(process.execPath, [join(repoRoot(), 'scripts', 'pack-cli.mjs'), '--out', join(dir, 'pack')], { encoding: 'utf8' });
  const fleetBin = join(dir, 'pack', 'fleet-cli', 'fleet.mjs');
  opts.log(`ci nodes: client packed (${packed.trim().split('\n').at(-1) ?? ''})`);
  const procs: Proc[] = [
    run([opts.dist('apps', 'coordinator', 'src', 'main.js')], { ...env, COORDINATOR_PORT: String(port) }),
    run([opts.dist('apps', 'trend-analyzer', 'src', 'main.js')], { ...env, TREND_ANALYZER_PORT: String(await freePort()) }),
  ];
  const api = jsonApi(base);
  const startOf = (n: number) => Math.round((START_MS[n] ?? 0) * opts.scale);
  /** One build served by the three nodes; wall time from their start to the last node's exit. */
  const build = async (id: string): Promise<{ ms: number; codes: Array<number | null> }> => {
    const t0 = performance.now();
    const codes = await Promise.all(
      checkouts.map(
        (cwd, n) =>
          new Promise<number | null>((resolve) => {
            setTimeout(() => {
              const child = spawn(
                process.execPath,
                [fleetBin, 'run', 'tests/', '--build', id, '--node-index', String(n), '--node-total', String(NODES), '--slots', String(SLOTS)],
                { cwd, env: { ...process.env, COORDINATOR_URL: base }, stdio: ['ignore', 'ignore', 'pipe'] },
              );
              // BENCH_TRACE=file: every node's lines, with the time since the build's start.
              child.stderr?.setEncoding('utf8').on('data', (text: string) => {
                if (!process.env.BENCH_TRACE) return;
                const at = (performance.now() - t0).toFixed(0).padStart(6);
                for (const line of text.split('\n').filter(Boolean)) appendFileSync(process.env.BENCH_TRACE, `${id} ${at} n${n} ${line}\n`);
              });
              child.on('exit', (code) => resolve(code));
            }, startOf(n));
          }),
      ),
    );
    return { ms: performance.now() - t0, codes };
  };
  try {
    await until(async () => (await fetch(`${base}/health`).catch(() => undefined))?.ok, 'the coordinator', 30_000, 50);
    const first = await build('history');
    opts.log(`ci nodes: first build (no history) ${(first.ms / 1000).toFixed(2)} s, exits ${first.codes.join(' ')}`);
    await until(
      async () => (await opts.redis.hlen(new FleetKeys(prefix).testDurations)) >= FILES,
      'the analyzer to learn the durations',
      60_000,
      100,
    );
    const durationsOf = async (id: string) =>
      new Map(
        (await api<{ files: Array<{ key: string; duration_ms: number | null }> }>('GET', `/builds/${id}`)).files.map((f) => [
          f.key,
          f.duration_ms ?? 0,
        ]),
      );
    // What a split by timings knows: the previous build's durations (CircleCI reads them from its JUnit).
    const history = await durationsOf('history');
    // The next build's files take a little more or less than last time, the same for every way of running them.
    for (const at of checkouts) writeSuite(at, keys, opts.scale, 2);
    const dynamic = await build('measured');
    const view = await api<{ state: string }>('GET', '/builds/measured');
    const measured = await durationsOf('measured');
    // The best any split can do: slots idle before their node starts are lost to every way alike.
    const idle = checkouts.reduce((t, _, n) => t + SLOTS * startOf(n), 0);
    const total = [...measured.values()].reduce((a, b) => a + b, 0);
    const ideal = Math.max(idealMakespanMs([...measured.values()], NODES * SLOTS), (total + idle) / (NODES * SLOTS));

    const script = opts.dist('bench', 'static-shard.js');
    const wall = async (shards: string[][]) => {
      const t0 = performance.now();
      await Promise.all(shards.map((files, n) => runShard(script, files, checkouts[n], SLOTS, startOf(n))));
      return performance.now() - t0;
    };
    // By timings: each node gets its shard by the last build's durations, and runs it longest first on its slots.
    const timed: Timed[] = keys.map((key) => ({ key, expectedMs: history.get(key) ?? 0 }));
    const byTimings = await wall(timingSplit(timed, NODES).map((s) => longestFirst(s).map((f) => f.key)));
    // By hash: each node gets the files whose path hashes to it, in name order.
    const byHash = await wall(Array.from({ length: NODES }, (_, n) => keys.filter((k) => hashShard(k, NODES) === n)));
    return {
      files: FILES,
      nodes: NODES,
      slots_per_node: SLOTS,
      node_start_offsets_ms: START_MS.map((_, n) => startOf(n)),
      verdict: view.state,
      total_s: total / 1000,
      longest_s: Math.max(...measured.values()) / 1000,
      ideal_s: ideal / 1000,
      dynamic: { wall_s: dynamic.ms / 1000, efficiency: ideal / dynamic.ms },
      dynamic_no_history: { wall_s: first.ms / 1000, efficiency: ideal / first.ms },
      timing_split: { wall_s: byTimings / 1000, efficiency: ideal / byTimings },
      hash_split: { wall_s: byHash / 1000, efficiency: ideal / byHash },
      goal: 0.9,
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await deleteMatching(opts.redis, `${prefix}:*`);
    rmSync(dir, { recursive: true, force: true });
  }
}
