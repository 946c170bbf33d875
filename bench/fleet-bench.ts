// `npm run bench [-- --quick] [--tasks N] [--workers W] [--concurrency C] [--reps R] [--submit N] [--latency N] [--events N]`
// The fleet against raw BullMQ on the same Redis, in one run, pairs alternated, medians reported as ratios.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { loadCommonSettings, repoRoot } from '@fleet/config';
import { encodeTimingEvent, newTaskId, parseTask, type Task } from '@fleet/contracts';
import { deleteMatching, FleetKeys, taskJobOptions } from '@fleet/redis';
import { freePort, median, pct, peakRssMb, type Proc, run, until } from './bench-support.js';
import { makespan } from './makespan.js';

const { values: o } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tasks: { type: 'string' },
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '16' },
    reps: { type: 'string' },
    submit: { type: 'string' },
    latency: { type: 'string' },
    events: { type: 'string' },
    out: { type: 'string', default: join(repoRoot(), 'bench', 'results') },
  },
});
const quick = o.quick;
const N = Number(o.tasks ?? (quick ? 5000 : 20_000));
const W = Number(o.workers);
const C = Number(o.concurrency);
const REPS = Number(o.reps ?? (quick ? 2 : 3));
const SUBMIT = Number(o.submit ?? (quick ? 5000 : 10_000));
const LATENCY = Number(o.latency ?? (quick ? 30 : 100));
const EVENTS = Number(o.events ?? (quick ? 30_000 : 100_000));
const url = loadCommonSettings(process.env).redisUrl;
const dist = (...p: string[]) => join(repoRoot(), 'dist', ...p);
const redis = new Redis(url, { maxRetriesPerRequest: null });
const RETENTION = { completedAgeS: 86_400, completedCount: 1_000_000, failedAgeS: 86_400, failedCount: 1_000_000 };
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
let seq = 0;
const prefixOf = (label: string) => `bench-${process.pid}-${label}-${++seq}`;

const configDir = mkdtempSync(join(tmpdir(), 'fleet-bench-'));
writeFileSync(join(configDir, 'worker_templates.json'), JSON.stringify({ bench: { provider: 'LOCAL', resources: { cpu: 1 }, concurrency: C } }));
writeFileSync(
  join(configDir, 'resource_manager_config.json'),
  JSON.stringify({
    min_workers: 1,
    max_workers: 3,
    polling_interval: 0.5,
    scale_up_cooldown: 0,
    scale_down_cooldown: 30,
    target_backlog_per_worker: 4,
    max_step_up: 2,
    lease_ttl: 3,
  }),
);
writeFileSync(
  join(configDir, 'performance_analyzer_config.json'),
  JSON.stringify({ polling_interval: 60, metrics_grouping: ['pool', 'model_name'] }),
);
const fleetEnv = (prefix: string) => ({ REDIS_URL: url, FLEET_PREFIX: prefix, CONFIG_DIR: configDir, WORKER_HEARTBEAT_MS: '200' });

const noop = (): Task => {
  const r = parseTask({ type: 'synthetic', name: 'noop', config: { duration_ms: 0 } });
  if (!r.ok) throw new Error('bad bench task');
  return r.value;
};

async function usedMemory(): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
}

async function cleanup(prefix: string) {
  await deleteMatching(redis, `${prefix}:*`);
}

/** Fills a paused queue, starts the clock, resumes, and times until every job is completed. */
async function drain(kind: 'raw' | 'fleet') {
  const prefix = prefixOf(`drain-${kind}`);
  const keys = new FleetKeys(prefix);
  const queue = new Queue('bench', { connection: redis, prefix: keys.bullPrefix });
  const workers: Proc[] = [];
  for (let i = 0; i < W; i++) {
    workers.push(
      kind === 'raw'
        ? run([dist('bench', 'raw-worker.js'), url, keys.bullPrefix, 'bench', String(C)], {})
        : run([dist('apps', 'worker', 'src', 'main.js'), '--pool', 'bench', '--concurrency', String(C), '--id', `w${i}`], fleetEnv(prefix)),
    );
  }
  if (kind === 'raw') await until(() => workers.every((w) => w.output().includes('ready')), 'raw workers');
  else await until(async () => (await redis.zcard(keys.workerIndex)) === W, 'fleet workers to register');
  await queue.pause();
  const before = await usedMemory();
  const task = noop();
  for (let i = 0; i < N; i += 1000) {
    const n = Math.min(1000, N - i);
    await queue.addBulk(
      Array.from({ length: n }, () => {
        if (kind === 'raw') return { name: 'noop', data: { n: i } };
        const id = newTaskId('bench');
        return { name: task.type, data: task, opts: taskJobOptions(id, task, RETENTION) };
      }),
    );
  }
  const t0 = performance.now();
  await queue.resume();
  await until(async () => (await queue.getJobCounts('completed')).completed === N, `${N} ${kind} jobs`, 300_000, 5);
  const seconds = (performance.now() - t0) / 1000;
  if (kind === 'fleet') await until(async () => (await redis.xlen(keys.timings)) === N, 'every timing event', 30_000);
  const bytesPerTask = ((await usedMemory()) - before) / N;
  const rss = Math.max(...workers.map((w) => peakRssMb(w.pid) ?? 0));
  await Promise.all(workers.map((w) => w.stop()));
  await queue.close();
  await cleanup(prefix);
  return { rate: N / seconds, seconds, bytesPerTask, rss };
}

async function submitRaw() {
  const prefix = prefixOf('submit-raw');
  const queue = new Queue('bench', { connection: redis, prefix: new FleetKeys(prefix).bullPrefix });
  const task = noop();
  const t0 = performance.now();
  for (let i = 0; i < SUBMIT; i += 1000)
    await queue.addBulk(Array.from({ length: Math.min(1000, SUBMIT - i) }, () => ({ name: 'synthetic', data: task })));
  const seconds = (performance.now() - t0) / 1000;
  await queue.close();
  await cleanup(prefix);
  return { rate: SUBMIT / seconds };
}

async function withCoordinator<T>(prefix: string, fn: (base: string, proc: Proc) => Promise<T>): Promise<T> {
  const port = await freePort();
  const proc = run([dist('apps', 'coordinator', 'src', 'main.js')], { ...fleetEnv(prefix), COORDINATOR_PORT: String(port) });
  const base = `http://127.0.0.1:${port}`;
  try {
    await until(async () => (await fetch(`${base}/health`).catch(() => undefined))?.ok, 'the coordinator', 30_000, 50);
    return await fn(base, proc);
  } finally {
    await proc.stop();
  }
}

async function submitFleet() {
  const prefix = prefixOf('submit-fleet');
  const body = JSON.stringify({ tasks: Array.from({ length: 1000 }, () => ({ type: 'synthetic', name: 'noop', config: { duration_ms: 0 } })) });
  const r = await withCoordinator(prefix, async (base, proc) => {
    const t0 = performance.now();
    for (let i = 0; i < SUBMIT; i += 1000) {
      const res = await fetch(`${base}/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (res.status !== 201) throw new Error(`batch refused: ${res.status}`);
    }
    return { rate: SUBMIT / ((performance.now() - t0) / 1000), rss: peakRssMb(proc.pid) };
  });
  await cleanup(prefix);
  return r;
}

/** Idle fleet: one task at a time, submit → start and submit → result. */
async function latency(kind: 'raw' | 'fleet') {
  const prefix = prefixOf(`latency-${kind}`);
  const keys = new FleetKeys(prefix);
  const queue = new Queue('bench', { connection: redis, prefix: keys.bullPrefix });
  const events = new QueueEvents('bench', { connection: { url }, prefix: keys.bullPrefix });
  await events.waitUntilReady();
  const worker =
    kind === 'raw'
      ? run([dist('bench', 'raw-worker.js'), url, keys.bullPrefix, 'bench', '1'], {})
      : run([dist('apps', 'worker', 'src', 'main.js'), '--pool', 'bench', '--concurrency', '1'], fleetEnv(prefix));
  if (kind === 'raw') await until(() => worker.output().includes('ready'), 'raw worker');
  else await until(async () => (await redis.zcard(keys.workerIndex)) === 1, 'fleet worker');
  const start: number[] = [];
  const result: number[] = [];
  const sample = async (submit: () => Promise<Job>) => {
    for (let i = 0; i < LATENCY; i++) {
      const t0 = Date.now();
      const job = await submit();
      await job.waitUntilFinished(events, 10_000);
      const done = Date.now();
      const stored = (await Job.fromId(queue, job.id as string)) as Job;
      start.push((stored.processedOn as number) - t0);
      result.push(done - t0);
    }
  };
  if (kind === 'raw') await sample(() => queue.add('noop', {}));
  else
    await withCoordinator(prefix, async (base) => {
      await sample(async () => {
        const res = await fetch(`${base}/tasks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'synthetic', name: 'ping' }),
        });
        const { id } = (await res.json()) as { id: string };
        return (await Job.fromId(queue, id)) as Job;
      });
    });
  await worker.stop();
  await events.close();
  await queue.close();
  await cleanup(prefix);
  return {
    start: { p50: pct(start, 50), p95: pct(start, 95), p99: pct(start, 99) },
    result: { p50: pct(result, 50), p95: pct(result, 95), p99: pct(result, 99) },
  };
}

/** From a burst to the first task taken by a worker the resource manager added. */
async function scaleUp() {
  const prefix = prefixOf('scale');
  const keys = new FleetKeys(prefix);
  const port = await freePort();
  const rm = run([dist('apps', 'resource-manager', 'src', 'main.js')], {
    ...fleetEnv(prefix),
    RESOURCE_MANAGER_PORT: String(port),
    WORKER_HEARTBEAT_MS: '100',
  });
  const queue = new Queue('bench', { connection: redis, prefix: keys.bullPrefix });
  try {
    const first = await until(async () => (await redis.zrange(keys.workerIndex, 0, -1))[0], 'min_workers', 30_000, 20);
    const task = parseTask({ type: 'synthetic', name: 'burst', config: { duration_ms: 100 } });
    if (!task.ok) throw new Error('bad task');
    const t0 = performance.now();
    await queue.addBulk(
      Array.from({ length: 800 }, () => ({ name: 'synthetic', data: task.value, opts: taskJobOptions(newTaskId('bench'), task.value, RETENTION) })),
    );
    await until(
      async () => {
        for (const id of await redis.zrange(keys.workerIndex, 0, -1)) {
          if (id !== first && (JSON.parse((await redis.hget(keys.worker(id), 'current_tasks')) ?? '[]') as string[]).length > 0) return true;
        }
        return false;
      },
      'an added worker to take a task',
      60_000,
      5,
    );
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, ticks: seconds / 0.5 };
  } finally {
    await rm.stop();
    await queue.close();
    await cleanup(prefix);
  }
}

/** Timing events per second from a pre-filled stream: the analyzer against bare XRANGE reading. */
async function ingest() {
  const prefix = prefixOf('ingest');
  const keys = new FleetKeys(prefix);
  const now = Date.now();
  for (let i = 0; i < EVENTS; i += 1000) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(EVENTS, i + 1000); j++) {
      p.xadd(
        keys.timings,
        '*',
        ...encodeTimingEvent({
          task_id: `bench.${j}`,
          task_type: j % 3 ? 'synthetic' : 'benchmark',
          pool: 'bench',
          worker_id: `w${j % 8}`,
          attempt: 1,
          outcome: j % 97 ? 'completed' : 'failed',
          final: true,
          queued_at: now,
          started_at: now + 1,
          finished_at: now + 2 + j,
          wait_ms: 1,
          run_ms: 10 + (j % 13),
          metrics: { latency_ms: 5 + (j % 7), memory_mb: 100 },
          labels: { model_name: `m${j % 4}` },
        }),
      );
    }
    await p.exec();
  }
  let t0 = performance.now();
  let read = 0;
  for (let from = '-'; ;) {
    const rows = await redis.xrange(keys.timings, from, '+', 'COUNT', 1000);
    read += rows.length;
    if (rows.length < 1000) break;
    from = `(${(rows.at(-1) as [string, string[]])[0]}`;
  }
  const raw = read / ((performance.now() - t0) / 1000);
  const port = await freePort();
  const analyzer = run([dist('apps', 'trend-analyzer', 'src', 'main.js')], { ...fleetEnv(prefix), TREND_ANALYZER_PORT: String(port) });
  const counted = async () => Number((await redis.hget(`${prefix}:ta:counters`, 'events')) ?? 0);
  try {
    const n0 = await until(async () => (await counted()) || false, 'the analyzer to start counting', 60_000, 2);
    t0 = performance.now();
    await until(async () => (await counted()) >= EVENTS, 'every event analysed', 300_000, 5);
    return { rate: (EVENTS - n0) / ((performance.now() - t0) / 1000), raw, rss: peakRssMb(analyzer.pid) };
  } finally {
    await analyzer.stop();
    await cleanup(prefix);
  }
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main() {
  log(
    `Redis ${url}; drain ${N} tasks × ${REPS} reps, ${W} workers × concurrency ${C}; submit ${SUBMIT}; latency ${LATENCY} samples; ingest ${EVENTS} events`,
  );
  const drains = { raw: [] as Array<Awaited<ReturnType<typeof drain>>>, fleet: [] as Array<Awaited<ReturnType<typeof drain>>> };
  const submits = { raw: [] as number[], fleet: [] as number[] };
  let coordinatorRss = 0;
  for (let r = 0; r < REPS; r++) {
    for (const kind of r % 2 ? (['fleet', 'raw'] as const) : (['raw', 'fleet'] as const)) {
      const d = await drain(kind);
      drains[kind].push(d);
      log(`drain ${kind} #${r + 1}: ${fmt(d.rate)} tasks/s`);
    }
    for (const kind of r % 2 ? (['fleet', 'raw'] as const) : (['raw', 'fleet'] as const)) {
      if (kind === 'raw') submits.raw.push((await submitRaw()).rate);
      else {
        const s = await submitFleet();
        submits.fleet.push(s.rate);
        coordinatorRss = Math.max(coordinatorRss, s.rss ?? 0);
      }
      log(`submit ${kind} #${r + 1}: ${fmt(submits[kind].at(-1) as number)} tasks/s`);
    }
  }
  const lat = { raw: await latency('raw'), fleet: await latency('fleet') };
  log('pickup latency measured');
  const scale = await scaleUp();
  log(`scale-up reaction: ${scale.seconds.toFixed(2)} s`);
  const ing = await ingest();
  log(`ingest: ${fmt(ing.rate)} events/s (XRANGE ${fmt(ing.raw)})`);
  const span = await makespan({ redis, url, dist, scale: quick ? 0.3 : 1, log });
  log(`makespan: by history ${span.history.efficiency.toFixed(2)}, hash split ${span.hash_split.efficiency.toFixed(2)} of ideal`);

  const drainRaw = median(drains.raw.map((d) => d.rate));
  const drainFleet = median(drains.fleet.map((d) => d.rate));
  const subRaw = median(submits.raw);
  const subFleet = median(submits.fleet);
  const results = {
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? '',
      memory_gib: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      redis: /redis_version:(\S+)/.exec(await redis.info('server'))?.[1],
    },
    parameters: { tasks: N, workers: W, concurrency: C, reps: REPS, submit: SUBMIT, latency_samples: LATENCY, events: EVENTS, quick },
    drain: { raw_tasks_per_s: drainRaw, fleet_tasks_per_s: drainFleet, ratio: drainFleet / drainRaw, goal: 0.8 },
    submit: { raw_tasks_per_s: subRaw, fleet_tasks_per_s: subFleet, ratio: subFleet / subRaw, goal: 0.7 },
    latency_ms: lat,
    scale_up: scale,
    ingest: { fleet_events_per_s: ing.rate, raw_xrange_events_per_s: ing.raw, ratio: ing.rate / ing.raw, goal_events_per_s: 50_000 },
    makespan: span,
    memory: {
      worker_peak_rss_mb: median(drains.fleet.map((d) => d.rss)),
      raw_worker_peak_rss_mb: median(drains.raw.map((d) => d.rss)),
      coordinator_peak_rss_mb: coordinatorRss,
      analyzer_peak_rss_mb: ing.rss,
      redis_bytes_per_retained_task: median(drains.fleet.map((d) => d.bytesPerTask)),
      redis_bytes_per_retained_raw_job: median(drains.raw.map((d) => d.bytesPerTask)),
    },
  };
  const mark = (ok: boolean) => (ok ? 'meets goal' : 'below goal');
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${results.machine.cpus} × ${results.machine.model} (${results.machine.memory_gib} GiB), Node ${results.machine.node}, Redis ${results.machine.redis}; ${quick ? 'quick mode' : 'full mode'}: ${N} tasks, ${W} workers × concurrency ${C}, median of ${REPS} alternated runs.`,
    '',
    '| measure | fleet | raw BullMQ | ratio | goal |',
    '| --- | --- | --- | --- | --- |',
    `| drain throughput (no-op tasks/s) | ${fmt(drainFleet)} | ${fmt(drainRaw)} | ${(drainFleet / drainRaw).toFixed(2)} | ≥ 0.8: ${mark(drainFleet / drainRaw >= 0.8)} |`,
    `| submit throughput (tasks/s; HTTP batches of 1,000 vs addBulk) | ${fmt(subFleet)} | ${fmt(subRaw)} | ${(subFleet / subRaw).toFixed(2)} | ≥ 0.7: ${mark(subFleet / subRaw >= 0.7)} |`,
    `| pickup latency, submit → start p50 / p95 / p99 (ms) | ${lat.fleet.start.p50} / ${lat.fleet.start.p95} / ${lat.fleet.start.p99} | ${lat.raw.start.p50} / ${lat.raw.start.p95} / ${lat.raw.start.p99} | ${(lat.fleet.start.p50 / Math.max(1, lat.raw.start.p50)).toFixed(2)} (p50) | — |`,
    `| pickup latency, submit → result p50 / p95 / p99 (ms) | ${lat.fleet.result.p50} / ${lat.fleet.result.p95} / ${lat.fleet.result.p99} | ${lat.raw.result.p50} / ${lat.raw.result.p95} / ${lat.raw.result.p99} | ${(lat.fleet.result.p50 / Math.max(1, lat.raw.result.p50)).toFixed(2)} (p50) | — |`,
    `| scale-up reaction (burst → first task on an added worker) | ${scale.seconds.toFixed(2)} s (${scale.ticks.toFixed(1)} ticks of 0.5 s) | — | — | — |`,
    `| analyzer ingest (events/s) | ${fmt(ing.rate)} | ${fmt(ing.raw)} (bare XRANGE) | ${(ing.rate / ing.raw).toFixed(2)} | ≥ 50,000/s: ${mark(ing.rate >= 50_000)} |`,
    `| peak RSS, worker process (MiB) | ${fmt(results.memory.worker_peak_rss_mb)} | ${fmt(results.memory.raw_worker_peak_rss_mb)} | ${(results.memory.worker_peak_rss_mb / results.memory.raw_worker_peak_rss_mb).toFixed(2)} | — |`,
    `| peak RSS, coordinator / analyzer (MiB) | ${fmt(coordinatorRss)} / ${fmt(ing.rss ?? 0)} | — | — | — |`,
    `| makespan efficiency, ${span.files}-file skewed suite on ${span.slots} slots (ideal ${span.ideal_s.toFixed(2)} s ÷ wall) | ${span.history.efficiency.toFixed(2)} by history (${span.history.wall_s.toFixed(2)} s); ${span.no_history.efficiency.toFixed(2)} before any history (${span.no_history.wall_s.toFixed(2)} s) | ${span.hash_split.efficiency.toFixed(2)} hash split like Jest --shard (${span.hash_split.wall_s.toFixed(2)} s) | — | ≥ 0.9 by history: ${mark(span.history.efficiency >= 0.9)} |`,
    `| Redis memory per retained finished task (bytes) | ${fmt(results.memory.redis_bytes_per_retained_task)} | ${fmt(results.memory.redis_bytes_per_retained_raw_job)} | ${(results.memory.redis_bytes_per_retained_task / results.memory.redis_bytes_per_retained_raw_job).toFixed(2)} | — |`,
  ].join('\n');
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(o.out, 'latest.md'), `${md}\n`);
  console.log(md);
}

try {
  await main();
} finally {
  rmSync(configDir, { recursive: true, force: true });
  redis.disconnect();
}
