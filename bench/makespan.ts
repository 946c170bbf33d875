// Makespan efficiency of a run: a 200-file suite with skewed durations (a few long files) on 4 worker slots,
// ordered longest first by the analyzer's history, against a hash split like Jest's `--shard i/4` (each shard on
// one slot, run one file after another), in the same run of the bench. Efficiency = ideal ÷ actual wall time,
// with ideal = max(longest file, total ÷ slots) over the files' measured durations.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { deleteMatching, FleetKeys } from '@fleet/redis';
import { hashShard, idealMakespanMs } from '@fleet/runs';
import { freePort, jsonApi, type Proc, run, until } from './bench-support.js';

const SLOTS = 4;

interface RunView {
  id: string;
  counts: { total: number; done: number };
  files: Array<{ key: string; duration_ms: number | null }>;
}

/**
 * File i's duration: six long ones (more than there are slots), last by name, so an order blind to durations
 * starts them last; the other 194 short and uneven.
 */
const durationMs = (i: number, files: number, scale: number) => Math.round((i >= files - 6 ? 4000 : 50 + ((i * 37) % 200)) * scale);

export async function makespan(opts: {
  redis: Redis;
  url: string;
  dist: (...p: string[]) => string;
  scale: number;
  files: number;
  log: (m: string) => void;
}) {
  const FILES = opts.files;
  const prefix = `bench-${process.pid}-makespan`;
  const dir = mkdtempSync(join(tmpdir(), 'fleet-makespan-'));
  mkdirSync(join(dir, 'suite'));
  const shardOf = new Map<string, number>();
  for (let i = 0; i < FILES; i++) {
    const key = `suite/f${String(i).padStart(3, '0')}.wait`;
    writeFileSync(join(dir, key), `#!/bin/sh\nsleep ${(durationMs(i, FILES, opts.scale) / 1000).toFixed(3)}\n`);
    chmodSync(join(dir, key), 0o755);
    shardOf.set(key, hashShard(key, SLOTS));
  }
  // One pool of 4 slots (2 workers × 2) for the run; four pools of one slot for the hash split's shards.
  const template = (capability: string, concurrency: number) => ({
    resources: { cpu: 1 },
    concurrency,
    capabilities: [capability],
    runners: { test: { '.wait': ['./{test_file}'] } },
  });
  writeFileSync(
    join(dir, 'worker_templates.json'),
    JSON.stringify({
      ms: template('MS', 2),
      ...Object.fromEntries(Array.from({ length: SLOTS }, (_, s) => [`shard${s}`, template(`SHARD${s}`, 1)])),
    }),
  );
  writeFileSync(join(dir, 'performance_analyzer_config.json'), JSON.stringify({ polling_interval: 60 }));
  const env = {
    REDIS_URL: opts.url,
    FLEET_PREFIX: prefix,
    CONFIG_DIR: dir,
    WORKER_HEARTBEAT_MS: '200',
    RUNS_TICK_MS: '100',
    RATE_LIMIT_PER_MINUTE: '1000000',
  };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [
    run([opts.dist('apps', 'coordinator', 'src', 'main.js')], { ...env, COORDINATOR_PORT: String(port) }),
    run([opts.dist('apps', 'trend-analyzer', 'src', 'main.js')], { ...env, TREND_ANALYZER_PORT: String(await freePort()) }),
    ...[0, 1].map((i) => run([opts.dist('apps', 'worker', 'src', 'main.js'), '--pool', 'ms', '--id', `ms${i}`], env)),
    ...Array.from({ length: SLOTS }, (_, s) => run([opts.dist('apps', 'worker', 'src', 'main.js'), '--pool', `shard${s}`, '--id', `shard${s}`], env)),
  ];
  const api = jsonApi(base);
  /** Submits runs together; resolves with the wall time until every file of every run is done, and the runs. */
  const timed = async (specs: object[]): Promise<{ ms: number; runs: RunView[] }> => {
    const t0 = performance.now();
    const ids = await Promise.all(specs.map(async (s) => (await api<RunView>('POST', '/runs', s)).id));
    const runs = await until(
      async () => {
        const views = await Promise.all(ids.map((id) => api<RunView>('GET', `/runs/${id}`)));
        return views.every((v) => v.counts.done === v.counts.total) ? views : undefined;
      },
      'the runs to finish',
      600_000,
      20,
    );
    return { ms: performance.now() - t0, runs };
  };
  try {
    await until(async () => (await fetch(`${base}/health`).catch(() => undefined))?.ok, 'the coordinator', 30_000, 50);
    await until(async () => (await opts.redis.zcard(new FleetKeys(prefix).workerIndex)) === 2 + SLOTS, 'the workers', 30_000, 50);
    // A first run teaches the analyzer every file's duration (no history yet: the files run in name order).
    const first = await timed([{ name: 'history', tests: ['suite/'], pool: 'ms' }]);
    opts.log(`makespan: first run (no history) ${(first.ms / 1000).toFixed(2)} s`);
    await until(
      async () => (await opts.redis.hlen(new FleetKeys(prefix).testDurations)) >= FILES,
      'the analyzer to learn the durations',
      60_000,
      100,
    );
    const ordered = await timed([{ name: 'by history', tests: ['suite/'], pool: 'ms' }]);
    const measured = ordered.runs[0]?.files.map((f) => f.duration_ms ?? 0) ?? [];
    const ideal = idealMakespanMs(measured, SLOTS);
    const shards = Array.from({ length: SLOTS }, (_, s) => ({
      name: `shard ${s + 1}/${SLOTS}`,
      tests: [...shardOf].filter(([, sh]) => sh === s).map(([k]) => k),
      pool: `shard${s}`,
    }));
    const hashed = await timed(shards);
    return {
      files: FILES,
      slots: SLOTS,
      total_s: measured.reduce((a, b) => a + b, 0) / 1000,
      longest_s: Math.max(...measured) / 1000,
      ideal_s: ideal / 1000,
      history: { wall_s: ordered.ms / 1000, efficiency: ideal / ordered.ms },
      no_history: { wall_s: first.ms / 1000, efficiency: ideal / first.ms },
      hash_split: { wall_s: hashed.ms / 1000, efficiency: ideal / hashed.ms },
      goal: 0.9,
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await deleteMatching(opts.redis, `${prefix}:*`);
    rmSync(dir, { recursive: true, force: true });
  }
}
