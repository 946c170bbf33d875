// The fleet's fixed cost per test file: a suite of files whose runner does nothing (`/bin/true`), run through
// one worker with one slot as a run, against spawning the same runner for each file one after another from
// this process. Cost per file = (the run's wall time, submission to verdict − the direct loop's) ÷ files.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { deleteMatching } from '@fleet/redis';
import { median, oneWorkerFleet, until } from './bench-support.js';

const NOOP = '/bin/true';

const spawnOnce = (argv: string[], cwd: string) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve());
  });

export async function perFile(opts: {
  redis: Redis;
  url: string;
  dist: (...p: string[]) => string;
  files: number;
  reps: number;
  log: (m: string) => void;
  nodeFlags: string[];
}) {
  const prefix = `bench-${process.pid}-perfile`;
  const dir = mkdtempSync(join(tmpdir(), 'fleet-perfile-'));
  mkdirSync(join(dir, 'nop'));
  const names = Array.from({ length: opts.files }, (_, i) => `nop/f${String(i).padStart(3, '0')}.nop`);
  for (const n of names) writeFileSync(join(dir, n), '');
  writeFileSync(
    join(dir, 'worker_templates.json'),
    JSON.stringify({ nop: { resources: { cpu: 1 }, concurrency: 1, runners: { test: { '.nop': [NOOP, '{test_file}'] } } } }),
  );
  const fleet = await oneWorkerFleet({ ...opts, prefix, dir, pool: 'nop', workerEntry: ['apps', 'worker', 'src', 'main.bundle.mjs'] });
  const { api } = fleet;
  const fleetRun = async () => {
    const t0 = Date.now();
    const { id } = await api<{ id: string }>('POST', '/runs', { name: 'no-op suite', tests: ['nop/'] });
    const view = await until(
      async () => {
        const v = await api<{ state: string; finished_at: string | null }>('GET', `/runs/${id}`);
        return v.finished_at !== null ? v : undefined;
      },
      'the run to finish',
      300_000,
      100,
    );
    if (view.state !== 'passed') throw new Error(`bench: the no-op run ended ${view.state}`);
    return Date.parse(view.finished_at ?? '') - t0;
  };
  const direct = async () => {
    const t0 = performance.now();
    for (const n of names) await spawnOnce([NOOP, n], dir);
    return performance.now() - t0;
  };
  try {
    const fleet: number[] = [];
    const raw: number[] = [];
    for (let r = 0; r < opts.reps; r++) {
      raw.push(await direct());
      fleet.push(await fleetRun());
      opts.log(`per-file #${r + 1}: fleet ${(fleet[r] / opts.files).toFixed(2)} ms/file, direct ${(raw[r] / opts.files).toFixed(2)} ms/file`);
    }
    const fleetPer = median(fleet) / opts.files;
    const directPer = median(raw) / opts.files;
    return { files: opts.files, fleet_ms_per_file: fleetPer, direct_ms_per_file: directPer, cost_ms_per_file: fleetPer - directPer, goal_ms: 5 };
  } finally {
    await fleet.stop();
    await deleteMatching(opts.redis, `${prefix}:*`);
    rmSync(dir, { recursive: true, force: true });
  }
}
