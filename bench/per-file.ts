// The fleet's fixed cost per test file: a suite of files whose runner does nothing (`/bin/true`), run through
// one worker with one slot as a run, against spawning the same runner for each file one after another directly.
// Cost per file = (the run's wall time, submission to verdict − the direct loop's) ÷ files, after one run not
// counted (the worker's first files start its launcher). The direct loop is a
// shell's (`sh -c 'for f; do /bin/true "$f"; done'`), as a user's script would run the files: spawning from this
// process costs more (a fork copies the page tables of a big Node process: 7-17 ms a file here against 2.4-3.3 from a
// shell), and measured against that the fleet's cost came out near zero, which flattered it. Both are reported.
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
  const oneWorker = await oneWorkerFleet({ ...opts, prefix, dir, pool: 'nop', workerEntry: ['apps', 'worker', 'src', 'main.bundle.mjs'] });
  const { api } = oneWorker;
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
  const fromNode = async () => {
    const t0 = performance.now();
    for (const n of names) await spawnOnce([NOOP, n], dir);
    return performance.now() - t0;
  };
  // One shell runs the loop (its own start, about a millisecond, is spread over the files).
  const fromShell = async () => {
    const t0 = performance.now();
    await spawnOnce(['/bin/sh', '-c', `for f in "$@"; do ${NOOP} "$f"; done`, 'sh', ...names], dir);
    return performance.now() - t0;
  };
  try {
    const fleet: number[] = [];
    const shell: number[] = [];
    const node: number[] = [];
    const per = (ms: number) => (ms / opts.files).toFixed(2);
    // One run first, not counted: the worker's first files start its launcher and warm its and the coordinator's
    // code, costs a worker pays once, not per file (the first of three counted runs was the slowest by 1-4 ms a
    // file in every run of this row).
    const warmup = await fleetRun();
    opts.log(`per-file warm-up (not counted): fleet ${per(warmup)} ms/file`);
    for (let r = 0; r < opts.reps; r++) {
      shell.push(await fromShell());
      node.push(await fromNode());
      fleet.push(await fleetRun());
      opts.log(`per-file #${r + 1}: fleet ${per(fleet[r])} ms/file, direct from a shell ${per(shell[r])}, from Node ${per(node[r])}`);
    }
    const fleetPer = median(fleet) / opts.files;
    // How the worker's launcher put programs in their cgroups, and what each way cost it when it timed both (see
    // launcher-server.ts), as its log says: the choice moves this row by several milliseconds on some VMs.
    const said = /programs start in their cgroups by (clone3|move) \([^)]*clone3 ([\d.]+) ms, move ([\d.]+) ms\)/.exec(oneWorker.workerOutput());
    const directPer = median(shell) / opts.files;
    return {
      files: opts.files,
      warmup_ms_per_file: warmup / opts.files,
      fleet_ms_per_file: fleetPer,
      direct_ms_per_file: directPer,
      direct_from_node_ms_per_file: median(node) / opts.files,
      cost_ms_per_file: fleetPer - directPer,
      goal_ms: 5,
      placement: said ? { chosen: said[1], clone3_ms: Number(said[2]), move_ms: Number(said[3]) } : null,
    };
  } finally {
    await oneWorker.stop();
    await deleteMatching(opts.redis, `${prefix}:*`);
    rmSync(dir, { recursive: true, force: true });
  }
}
