// `npm run bench [-- --quick] [--tasks N] [--workers W] [--concurrency C] [--reps R] [--submit N] [--latency N] [--events N]`
// The fleet against raw BullMQ on the same Redis, in one run, pairs alternated, medians reported as ratios.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { DEFAULT_SCALING_STRATEGY as DEFAULT_STRATEGY, loadCommonSettings, repoRoot } from '@fleet/config';
import { compactQueuedTask, encodeTimingEvent, newTaskId, parseTask, type Task } from '@fleet/contracts';
import { deleteMatching, FleetKeys, taskJobOptions } from '@fleet/redis';
import { commandDelta, commandStats, cpuMicros, freePort, jsonApi, median, pct, peakRssMb, type Proc, run, until } from './bench-support.js';
import { makespan } from './makespan.js';
import { ciNodes } from './ci-nodes.js';
import { autoscale } from './autoscale.js';
import { pythonWithXdist, shortSuite } from './short-suite.js';
import { perFile } from './per-file.js';
import { analysisBench } from './analysis.js';
import { streamFloor } from './stream-floor.js';
import { sourcesBench } from './sources.js';
import { clusterDrain } from './cluster-drain.js';

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
const N = Number(o.tasks ?? (quick ? 4000 : 20_000));
const W = Number(o.workers);
const C = Number(o.concurrency);
const REPS = Number(o.reps ?? (quick ? 2 : 3));
const SUBMIT = Number(o.submit ?? (quick ? 4000 : 10_000));
// p99 of 100 samples is their second highest, one stall's worth; 500 gives it five.
const LATENCY = Number(o.latency ?? (quick ? 30 : 500));
const EVENTS = Number(o.events ?? (quick ? 20_000 : 100_000));
const url = loadCommonSettings(process.env).redisUrl;
const dist = (...p: string[]) => join(repoRoot(), 'dist', ...p);
const redis = new Redis(url, { maxRetriesPerRequest: null });
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
// BENCH_PROFILE=<dir>: the fleet's workers and coordinator write a V8 CPU profile there (`node --cpu-prof`).
const nodeFlags = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
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

type Kind = 'raw' | 'equal' | 'fleet';

/** The job as the coordinator queues it: the validated task with its client, the fleet's own id and options. */
const fleetJob = (task: Task) => {
  const id = newTaskId('bench');
  return { name: task.type, data: compactQueuedTask(task, 'bench'), opts: taskJobOptions(id, task) };
};

/** Redis commands one completion poll costs (BullMQ's count script and the commands inside it). */
let commandsPerPoll = 0;
async function measurePollCost(queue: Queue) {
  const before = await commandStats(redis);
  for (let i = 0; i < 20; i++) await queue.getJobCounts('completed');
  commandsPerPoll = commandDelta(before, await commandStats(redis)).total / 20;
}

/**
 * Fills a paused queue, starts the clock, resumes, and times until every job is completed. `raw`: bare
 * BullMQ (tiny payload, no options, a processor returning 1); `equal`: BullMQ given the fleet's jobs (its
 * payload, ids, priority, attempts, retention) and a processor returning a result of the fleet's shape; `fleet`:
 * the real worker app. Also: the workers' CPU (with their descendants) and Redis's commands, per task.
 */
async function drain(kind: Kind) {
  const prefix = prefixOf(`drain-${kind}`);
  const keys = new FleetKeys(prefix);
  const queue = new Queue('bench', { connection: redis, prefix: keys.queuePrefix('bench') });
  const workers: Proc[] = [];
  for (let i = 0; i < W; i++) {
    workers.push(
      kind === 'fleet'
        ? run(
            [...nodeFlags, dist('apps', 'worker', 'src', 'main.js'), '--pool', 'bench', '--concurrency', String(C), '--id', `w${i}`],
            fleetEnv(prefix),
          )
        : run([...nodeFlags, dist('bench', 'raw-worker.js'), url, keys.queuePrefix('bench'), 'bench', String(C), kind], {}),
    );
  }
  if (kind === 'fleet') await until(async () => (await redis.zcard(keys.workerIndex)) === W, 'fleet workers to register');
  else await until(() => workers.every((w) => w.output().includes('ready')), `${kind} workers`);
  await queue.pause();
  if (!commandsPerPoll) await measurePollCost(queue);
  const before = await usedMemory();
  const task = noop();
  for (let i = 0; i < N; i += 1000) {
    const n = Math.min(1000, N - i);
    await queue.addBulk(Array.from({ length: n }, () => (kind === 'raw' ? { name: 'noop', data: { n: i } } : fleetJob(task))));
  }
  const cpu0 = workers.reduce((t, w) => t + cpuMicros(w.pid), 0);
  const cmd0 = await commandStats(redis);
  let polls = 0;
  const t0 = performance.now();
  await queue.resume();
  await until(
    async () => {
      polls++;
      return (await queue.getJobCounts('completed')).completed === N;
    },
    `${N} ${kind} jobs`,
    300_000,
    10,
  );
  const seconds = (performance.now() - t0) / 1000;
  if (kind === 'fleet') await until(async () => (await redis.xlen(keys.timings)) === N, 'every timing event', 30_000);
  const cpuPerTask = (workers.reduce((t, w) => t + cpuMicros(w.pid), 0) - cpu0) / N;
  const commands = commandDelta(cmd0, await commandStats(redis));
  const bytesPerTask = ((await usedMemory()) - before) / N;
  const rss = Math.max(...workers.map((w) => peakRssMb(w.pid) ?? 0));
  await Promise.all(workers.map((w) => w.stop()));
  await queue.close();
  await cleanup(prefix);
  return {
    rate: N / seconds,
    seconds,
    bytesPerTask,
    rss,
    cpuPerTask,
    commandsPerTask: (commands.total - polls * commandsPerPoll) / N,
    topCommands: commands.top,
  };
}

/** addBulk of bare jobs (`raw`) or of the fleet's jobs (`equal`), in batches of 1,000, with Redis's commands per task. */
async function submitRaw(kind: 'raw' | 'equal') {
  const prefix = prefixOf(`submit-${kind}`);
  const queue = new Queue('bench', { connection: redis, prefix: new FleetKeys(prefix).queuePrefix('bench') });
  const task = noop();
  const cmd0 = await commandStats(redis);
  const t0 = performance.now();
  for (let i = 0; i < SUBMIT; i += 1000)
    await queue.addBulk(
      Array.from({ length: Math.min(1000, SUBMIT - i) }, () => (kind === 'raw' ? { name: 'synthetic', data: task } : fleetJob(task))),
    );
  const seconds = (performance.now() - t0) / 1000;
  const commands = commandDelta(cmd0, await commandStats(redis));
  await queue.close();
  await cleanup(prefix);
  return { rate: SUBMIT / seconds, commandsPerTask: commands.total / SUBMIT };
}

async function withCoordinator<T>(prefix: string, fn: (base: string, proc: Proc) => Promise<T>): Promise<T> {
  const port = await freePort();
  const proc = run([...nodeFlags, dist('apps', 'coordinator', 'src', 'main.js')], { ...fleetEnv(prefix), COORDINATOR_PORT: String(port) });
  const base = `http://127.0.0.1:${port}`;
  try {
    await until(async () => (await fetch(`${base}/health/ready`).catch(() => undefined))?.ok, 'the coordinator', 30_000, 50);
    return await fn(base, proc);
  } finally {
    await proc.stop();
  }
}

/** Batches of 1,000 through POST /tasks/batch: the coordinator's CPU and Redis's commands per task besides. */
async function submitFleet() {
  const prefix = prefixOf('submit-fleet');
  const body = JSON.stringify({ tasks: Array.from({ length: 1000 }, () => ({ type: 'synthetic', name: 'noop', config: { duration_ms: 0 } })) });
  const r = await withCoordinator(prefix, async (base, proc) => {
    const cpu0 = cpuMicros(proc.pid);
    const cmd0 = await commandStats(redis);
    const t0 = performance.now();
    for (let i = 0; i < SUBMIT; i += 1000) {
      const res = await fetch(`${base}/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (res.status !== 201) throw new Error(`batch refused: ${res.status}`);
    }
    const rate = SUBMIT / ((performance.now() - t0) / 1000);
    const commands = commandDelta(cmd0, await commandStats(redis));
    return {
      rate,
      rss: peakRssMb(proc.pid),
      cpuPerTask: (cpuMicros(proc.pid) - cpu0) / SUBMIT,
      commandsPerTask: commands.total / SUBMIT,
      topCommands: commands.top,
    };
  });
  await cleanup(prefix);
  return r;
}

/**
 * Idle fleet: one task at a time, submit → start and submit → result. `raw`: bare BullMQ's add in this process;
 * `front`: the same add behind a bare HTTP server in another process (bench/raw-front.ts), the floor for any service
 * in front of the queue; `fleet`: through the coordinator.
 */
async function latency(kind: 'raw' | 'front' | 'fleet') {
  const prefix = prefixOf(`latency-${kind}`);
  const keys = new FleetKeys(prefix);
  const queue = new Queue('bench', { connection: redis, prefix: keys.queuePrefix('bench') });
  const events = new QueueEvents('bench', { connection: { url }, prefix: keys.queuePrefix('bench') });
  await events.waitUntilReady();
  const worker =
    kind === 'fleet'
      ? run([dist('apps', 'worker', 'src', 'main.js'), '--pool', 'bench', '--concurrency', '1'], fleetEnv(prefix))
      : run([dist('bench', 'raw-worker.js'), url, keys.queuePrefix('bench'), 'bench', '1'], {});
  if (kind !== 'fleet') await until(() => worker.output().includes('ready'), 'raw worker');
  else await until(async () => (await redis.zcard(keys.workerIndex)) === 1, 'fleet worker');
  const start: number[] = [];
  const result: number[] = [];
  // The start's two parts: submit → the job's creation (the coordinator's request), creation → the worker's start.
  const queued: number[] = [];
  const taken: number[] = [];
  // The first tasks after start-up pay for compiling code paths (JIT, scripts loaded): warm-up, not counted.
  const WARMUP = 10;
  const sample = async (submit: () => Promise<Job>) => {
    for (let i = 0; i < WARMUP + LATENCY; i++) {
      const t0 = Date.now();
      const job = await submit();
      await job.waitUntilFinished(events, 10_000);
      const done = Date.now();
      const stored = (await Job.fromId(queue, job.id as string)) as Job;
      if (i < WARMUP) continue;
      start.push((stored.processedOn as number) - t0);
      queued.push(stored.timestamp - t0);
      taken.push((stored.processedOn as number) - stored.timestamp);
      result.push(done - t0);
    }
  };
  if (kind === 'raw') await sample(() => queue.add('noop', {}));
  else if (kind === 'front') {
    const front = run([dist('bench', 'raw-front.js'), url, keys.queuePrefix('bench'), 'bench'], {});
    try {
      const port = await until(() => /port (\d+)/.exec(front.output())?.[1], 'the bare HTTP front');
      const api = jsonApi(`http://127.0.0.1:${port}`);
      await sample(async () => {
        const { id } = await api<{ id: string }>('POST', '/tasks', { type: 'synthetic', name: 'ping' });
        return (await Job.fromId(queue, id)) as Job;
      });
    } finally {
      await front.stop();
    }
  } else
    await withCoordinator(prefix, async (base) => {
      const api = jsonApi(base);
      await sample(async () => {
        const { id } = await api<{ id: string }>('POST', '/tasks', { type: 'synthetic', name: 'ping' });
        return (await Job.fromId(queue, id)) as Job;
      });
    });
  await worker.stop();
  await events.close();
  await queue.close();
  await cleanup(prefix);
  return {
    start: { p50: pct(start, 50), p95: pct(start, 95), p99: pct(start, 99) },
    queued: { p50: pct(queued, 50), p95: pct(queued, 95), p99: pct(queued, 99) },
    taken: { p50: pct(taken, 50), p95: pct(taken, 95), p99: pct(taken, 99) },
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
  const queue = new Queue('bench', { connection: redis, prefix: keys.queuePrefix('bench') });
  try {
    const first = await until(async () => (await redis.zrange(keys.workerIndex, 0, -1))[0], 'min_workers', 30_000, 20);
    const task = parseTask({ type: 'synthetic', name: 'burst', config: { duration_ms: 100 } });
    if (!task.ok) throw new Error('bad task');
    const t0 = performance.now();
    await queue.addBulk(
      Array.from({ length: 2400 }, () => ({
        name: 'synthetic',
        data: compactQueuedTask(task.value, 'bench'),
        opts: taskJobOptions(newTaskId('bench'), task.value),
      })),
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

/** The Redis server's CPU time so far (user and system), in microseconds. */
async function redisCpuMicros(): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
}

/** Timing events per second from a pre-filled stream: the analyzer against bare reading of it (see streamFloor). */
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
  const floor = await streamFloor(redis, keys.timings);
  const port = await freePort();
  const analyzer = run([...nodeFlags, dist('apps', 'trend-analyzer', 'src', 'main.js')], { ...fleetEnv(prefix), TREND_ANALYZER_PORT: String(port) });
  const counted = async () => Number((await redis.hget(`${prefix}:ta:counters`, 'events')) ?? 0);
  try {
    const n0 = await until(async () => (await counted()) || false, 'the analyzer to start counting', 60_000, 2);
    const t0 = performance.now();
    const cpu0 = { analyzer: cpuMicros(analyzer.pid), redis: await redisCpuMicros() };
    await until(async () => (await counted()) >= EVENTS, 'every event analysed', 300_000, 5);
    const rate = (EVENTS - n0) / ((performance.now() - t0) / 1000);
    // Where the time goes: each side's CPU per event over the same stretch (the bench's own polls included in Redis's).
    const cpuPerEvent = {
      analyzer: (cpuMicros(analyzer.pid) - cpu0.analyzer) / (EVENTS - n0),
      redis: ((await redisCpuMicros()) - cpu0.redis) / (EVENTS - n0),
    };
    return { rate, raw: floor.xrange, consumer: floor.consumer, cpuPerEvent, rss: peakRssMb(analyzer.pid) };
  } finally {
    await analyzer.stop();
    await cleanup(prefix);
  }
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** How the worker's launcher put programs in their cgroups, for the per-file row (nothing when it did not time both ways). */
const placementNote = (p: { chosen: string; clone3_ms: number; move_ms: number } | null) =>
  p
    ? `; into cgroups by ${p.chosen}: a /bin/true and a Node start took ${p.clone3_ms.toFixed(1)} ms by clone3, ${p.move_ms.toFixed(1)} by a move`
    : '';

/** BENCH_ONLY=drain,submit,suite,ingest,latency,cluster,sources (a profiling aid): the listed parts only, and no report. */
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : undefined;
/** BENCH_KINDS=fleet,equal (with BENCH_ONLY): which of raw, equal and fleet to run. */
const kinds = new Set((process.env.BENCH_KINDS ?? 'raw,equal,fleet').split(','));

async function main() {
  log(
    `Redis ${url}; drain ${N} tasks × ${REPS} reps, ${W} workers × concurrency ${C}; submit ${SUBMIT}; latency ${LATENCY} samples; ingest ${EVENTS} events`,
  );
  const drains: Record<Kind, Array<Awaited<ReturnType<typeof drain>>>> = { raw: [], equal: [], fleet: [] };
  const submits: Record<Kind, Array<{ rate: number; commandsPerTask: number; cpuPerTask?: number; topCommands?: Array<[string, number]> }>> = {
    raw: [],
    equal: [],
    fleet: [],
  };
  let coordinatorRss = 0;
  const orders: Kind[][] = [
    ['raw', 'equal', 'fleet'],
    ['fleet', 'equal', 'raw'],
    ['equal', 'fleet', 'raw'],
  ];
  for (let r = 0; r < REPS; r++) {
    for (const kind of orders[r % orders.length]) {
      if (only && (!only.has('drain') || !kinds.has(kind))) continue;
      const d = await drain(kind);
      drains[kind].push(d);
      log(`drain ${kind} #${r + 1}: ${fmt(d.rate)} tasks/s, ${fmt(d.cpuPerTask)} µs CPU/task, ${d.commandsPerTask.toFixed(1)} Redis commands/task`);
    }
    for (const kind of orders[r % orders.length]) {
      if (only && (!only.has('submit') || !kinds.has(kind))) continue;
      if (kind === 'fleet') {
        const s = await submitFleet();
        submits.fleet.push(s);
        coordinatorRss = Math.max(coordinatorRss, s.rss ?? 0);
      } else submits[kind].push(await submitRaw(kind));
      log(`submit ${kind} #${r + 1}: ${fmt(submits[kind].at(-1)?.rate ?? 0)} tasks/s`);
    }
  }
  if (only?.has('suite')) {
    for (const warm of ['session', false] as const) {
      const suite = await shortSuite({ redis, url, dist, files: quick ? 40 : 100, slots: 2, reps: quick ? 1 : 3, log, nodeFlags, warm });
      log(
        `short suite (warm ${warm}): fleet ${suite.fleet_s.toFixed(2)} s (first ${suite.first_s.toFixed(2)}, by history ${suite.history_s?.toFixed(2)}), node --test ${suite.runner_s.toFixed(2)} s, run end ${suite.run_end_ms} ms; last fleet run ${JSON.stringify(suite.verdicts.fleet)}`,
      );
    }
  }
  if (only?.has('pytest')) {
    const python = pythonWithXdist();
    if (python)
      for (const warm of ['session', true, false] as const)
        log(
          `pytest suite: ${JSON.stringify(await shortSuite({ redis, url, dist, files: quick ? 40 : 100, slots: 2, reps: quick ? 2 : 3, log, nodeFlags, runner: 'pytest', python, warm }))}`,
        );
    else log('pytest suite: no python3 with pytest and pytest-xdist (apt-get install -y python3-pytest-xdist)');
  }
  if (only?.has('perfile')) log(`per-file: ${JSON.stringify(await perFile({ redis, url, dist, files: 200, reps: 3, log, nodeFlags }))}`);
  if (only?.has('analysis')) await analysisBench({ redis, url, dist, perSeries: Number(process.env.BENCH_PER_SERIES ?? 200), log, nodeFlags });
  if (only?.has('autoscale')) log(`autoscale: ${JSON.stringify(await autoscale({ redis, url, dist, log }))}`);
  if (only?.has('ci')) log(`ci nodes: ${JSON.stringify(await ciNodes({ redis, url, dist, scale: quick ? 1 : 2, log }))}`);
  if (only?.has('sources')) {
    const src = await sourcesBench({ redis, url, dist, files: 40, reps: quick ? 1 : 3, log });
    log(`sources: ${JSON.stringify(src)}`);
  }
  if (only?.has('ingest')) {
    const cmd0 = await commandStats(redis);
    const ing = await ingest();
    log(
      `ingest: ${fmt(ing.rate)} events/s (XRANGE ${fmt(ing.raw)}, a bare group consumer ${fmt(ing.consumer)}); CPU µs per event ${JSON.stringify(ing.cpuPerEvent)}; commands ${JSON.stringify(commandDelta(cmd0, await commandStats(redis)).top)}`,
    );
  }
  if (only?.has('latency'))
    log(`latency: ${JSON.stringify({ raw: await latency('raw'), front: await latency('front'), fleet: await latency('fleet') })}`);
  if (only?.has('cluster')) await clusterDrain({ dist, tasksPerPool: quick ? 500 : 5000, concurrency: C, log });
  if (only) {
    log(JSON.stringify({ drains, submits }, (k, v: unknown) => (k === 'topCommands' ? undefined : v)));
    return;
  }
  const lat = { raw: await latency('raw'), front: await latency('front'), fleet: await latency('fleet') };
  log('pickup latency measured');
  const scale = await scaleUp();
  log(`scale-up reaction: ${scale.seconds.toFixed(2)} s`);
  const ing = await ingest();
  log(
    `ingest: ${fmt(ing.rate)} events/s (XRANGE ${fmt(ing.raw)}, a bare group consumer ${fmt(ing.consumer)}); CPU µs per event ${JSON.stringify(ing.cpuPerEvent)}`,
  );
  const span = await makespan({ redis, url, dist, scale: quick ? 0.15 : 1, files: quick ? 100 : 200, log });
  log(`makespan: by history ${span.history.efficiency.toFixed(2)}, hash split ${span.hash_split.efficiency.toFixed(2)} of ideal`);
  const ci = await ciNodes({ redis, url, dist, scale: quick ? 1 : 2, log });
  log(
    `ci nodes: dynamic ${ci.dynamic.efficiency.toFixed(2)}, by timings ${ci.timing_split.efficiency.toFixed(2)}, by hash ${ci.hash_split.efficiency.toFixed(2)} of ideal`,
  );
  const suite = await shortSuite({ redis, url, dist, files: quick ? 40 : 100, slots: 2, reps: quick ? 2 : 3, log, nodeFlags });
  log(`short suite: fleet ${suite.fleet_s.toFixed(2)} s, node --test ${suite.runner_s.toFixed(2)} s, run end ${suite.run_end_ms} ms`);
  // The same suite with each file inside one Node test session per slot (`runners.warm: {".mjs": "session"}`).
  const nodeSession = await shortSuite({ redis, url, dist, files: quick ? 40 : 100, slots: 2, reps: quick ? 2 : 3, log, nodeFlags, warm: 'session' });
  log(`short suite in node test sessions: fleet ${nodeSession.fleet_s.toFixed(2)} s, node --test ${nodeSession.runner_s.toFixed(2)} s`);
  const python = pythonWithXdist();
  if (!python) log('pytest suite: skipped, no python3 with pytest and pytest-xdist (apt-get install -y python3-pytest-xdist)');
  const pyOptions = { redis, url, dist, files: quick ? 40 : 100, slots: 2, reps: quick ? 2 : 3, log, nodeFlags, runner: 'pytest' as const, python };
  // Each file inside one pytest session per slot (`runners.warm: "session"`), then forked from a warm Python (the default).
  const pySession = python ? await shortSuite({ ...pyOptions, warm: 'session' }) : null;
  const pySuite = python ? await shortSuite(pyOptions) : null;
  // The other side of warm servers: the same suite with every file starting its own Python and pytest.
  const pyCold = python ? await shortSuite({ ...pyOptions, warm: false }) : null;
  const perFileCost = await perFile({ redis, url, dist, files: 200, reps: quick ? 2 : 5, log, nodeFlags });
  log(`per-file cost: ${perFileCost.cost_ms_per_file.toFixed(2)} ms`);
  const analysis = await analysisBench({ redis, url, dist, perSeries: quick ? 50 : 200, log, nodeFlags });
  const scaling = await autoscale({ redis, url, dist, log });
  const onCluster = await clusterDrain({ dist, tasksPerPool: quick ? 500 : 5000, concurrency: C, log });
  const src = await sourcesBench({ redis, url, dist, files: 40, reps: quick ? 1 : 3, log });
  log(
    `sources: submit → start cold ${src.submit_to_start_ms.cold} ms, warm ${src.submit_to_start_ms.warm} ms, workdir ${src.submit_to_start_ms.workdir} ms`,
  );

  const med = (k: Kind, f: (d: Awaited<ReturnType<typeof drain>>) => number) => median(drains[k].map(f));
  const drainRate = { raw: med('raw', (d) => d.rate), equal: med('equal', (d) => d.rate), fleet: med('fleet', (d) => d.rate) };
  const subRate = {
    raw: median(submits.raw.map((x) => x.rate)),
    equal: median(submits.equal.map((x) => x.rate)),
    fleet: median(submits.fleet.map((x) => x.rate)),
  };
  const results = {
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? '',
      memory_gib: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      redis: /redis_version:(\S+)/.exec(await redis.info('server'))?.[1],
    },
    parameters: { tasks: N, workers: W, concurrency: C, reps: REPS, submit: SUBMIT, latency_samples: LATENCY, events: EVENTS, quick },
    drain: {
      tasks_per_s: drainRate,
      ratio_to_equal: drainRate.fleet / drainRate.equal,
      ratio_to_bare: drainRate.fleet / drainRate.raw,
      goals: { to_equal: 0.9, to_bare: 0.8 },
      worker_cpu_us_per_task: {
        raw: med('raw', (d) => d.cpuPerTask),
        equal: med('equal', (d) => d.cpuPerTask),
        fleet: med('fleet', (d) => d.cpuPerTask),
      },
      redis_commands_per_task: {
        raw: med('raw', (d) => d.commandsPerTask),
        equal: med('equal', (d) => d.commandsPerTask),
        fleet: med('fleet', (d) => d.commandsPerTask),
      },
      fleet_top_commands: drains.fleet.at(-1)?.topCommands,
      equal_top_commands: drains.equal.at(-1)?.topCommands,
    },
    submit: {
      tasks_per_s: subRate,
      ratio_to_equal: subRate.fleet / subRate.equal,
      ratio_to_bare: subRate.fleet / subRate.raw,
      goal_to_equal: 0.85,
      coordinator_cpu_us_per_task: median(submits.fleet.map((x) => x.cpuPerTask ?? 0)),
      redis_commands_per_task: {
        raw: median(submits.raw.map((x) => x.commandsPerTask)),
        equal: median(submits.equal.map((x) => x.commandsPerTask)),
        fleet: median(submits.fleet.map((x) => x.commandsPerTask)),
      },
      fleet_top_commands: submits.fleet.at(-1)?.topCommands,
    },
    latency_ms: lat,
    latency_goal_p99_ms: 5,
    scale_up: scale,
    ingest: {
      fleet_events_per_s: ing.rate,
      raw_xrange_events_per_s: ing.raw,
      bare_consumer_events_per_s: ing.consumer,
      ratio: ing.rate / ing.raw,
      ratio_to_bare_consumer: ing.rate / ing.consumer,
      cpu_us_per_event: ing.cpuPerEvent,
      goal_events_per_s: 150_000,
    },
    makespan: span,
    ci_nodes: ci,
    autoscale: scaling,
    short_suite: suite,
    short_suite_node_session: nodeSession,
    pytest_session_suite: pySession,
    pytest_suite: pySuite,
    pytest_suite_cold: pyCold,
    per_file: perFileCost,
    analysis,
    sources: src,
    cluster: onCluster,
    memory: {
      worker_peak_rss_mb: med('fleet', (d) => d.rss),
      raw_worker_peak_rss_mb: med('raw', (d) => d.rss),
      coordinator_peak_rss_mb: coordinatorRss,
      analyzer_peak_rss_mb: ing.rss,
      redis_bytes_per_retained_task: med('fleet', (d) => d.bytesPerTask),
      redis_bytes_per_retained_equal_job: med('equal', (d) => d.bytesPerTask),
      redis_bytes_per_retained_raw_job: med('raw', (d) => d.bytesPerTask),
      goal_to_raw: 2,
    },
  };
  const mark = (ok: boolean) => (ok ? 'meets goal' : 'below goal');
  const r2 = (x: number) => x.toFixed(2);
  /** A short suite's first run and its later runs (by history; — when there were none): seconds or ratios. */
  const firstLater = (first: number, later: number | null) => `${r2(first)} / ${later === null ? '—' : r2(later)}`;
  const m = results.memory;
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${results.machine.cpus} × ${results.machine.model} (${results.machine.memory_gib} GiB), Node ${results.machine.node}, Redis ${results.machine.redis}; ${quick ? 'quick mode' : 'full mode'}: ${N} tasks, ${W} workers × concurrency ${C}, median of ${REPS} alternated runs.`,
    '',
    '| measure | fleet | feature-equal BullMQ | bare BullMQ | ratio | goal |',
    '| --- | --- | --- | --- | --- | --- |',
    `| drain throughput (no-op tasks/s) | ${fmt(drainRate.fleet)} | ${fmt(drainRate.equal)} | ${fmt(drainRate.raw)} | ${r2(results.drain.ratio_to_equal)} of equal, ${r2(results.drain.ratio_to_bare)} of bare | ≥ 0.9 of equal: ${mark(results.drain.ratio_to_equal >= 0.9)}; ≥ 0.8 of bare: ${mark(results.drain.ratio_to_bare >= 0.8)} |`,
    `| worker CPU per task (µs, with its guard) | ${fmt(results.drain.worker_cpu_us_per_task.fleet)} | ${fmt(results.drain.worker_cpu_us_per_task.equal)} | ${fmt(results.drain.worker_cpu_us_per_task.raw)} | ${r2(results.drain.worker_cpu_us_per_task.fleet / results.drain.worker_cpu_us_per_task.equal)} of equal | — |`,
    `| Redis commands per task, drain (scripts' inner commands included) | ${r2(results.drain.redis_commands_per_task.fleet)} | ${r2(results.drain.redis_commands_per_task.equal)} | ${r2(results.drain.redis_commands_per_task.raw)} | ${r2(results.drain.redis_commands_per_task.fleet / results.drain.redis_commands_per_task.equal)} of equal | — |`,
    `| submit throughput (tasks/s; HTTP batches of 1,000 vs addBulk) | ${fmt(subRate.fleet)} | ${fmt(subRate.equal)} | ${fmt(subRate.raw)} | ${r2(results.submit.ratio_to_equal)} of equal, ${r2(results.submit.ratio_to_bare)} of bare | ≥ 0.85 of equal: ${mark(results.submit.ratio_to_equal >= 0.85)} |`,
    `| coordinator CPU per submitted task (µs) | ${fmt(results.submit.coordinator_cpu_us_per_task)} | — | — | — | — |`,
    `| Redis commands per task, submit | ${r2(results.submit.redis_commands_per_task.fleet)} | ${r2(results.submit.redis_commands_per_task.equal)} | ${r2(results.submit.redis_commands_per_task.raw)} | ${r2(results.submit.redis_commands_per_task.fleet / results.submit.redis_commands_per_task.equal)} of equal | — |`,
    `| pickup latency, submit → start p50 / p95 / p99 (ms) | ${lat.fleet.start.p50} / ${lat.fleet.start.p95} / ${lat.fleet.start.p99} | — | ${lat.raw.start.p50} / ${lat.raw.start.p95} / ${lat.raw.start.p99}; behind a bare HTTP server ${lat.front.start.p50} / ${lat.front.start.p95} / ${lat.front.start.p99} | p99 ${r2((lat.fleet.start.p99 ?? NaN) / (lat.front.start.p99 ?? NaN))} of the bare HTTP server's | p99 ≤ 5 ms: ${mark((lat.fleet.start.p99 ?? Infinity) <= 5)} |`,
    `| pickup latency split: submit → the job's creation (the coordinator's request) / creation → start, p50 / p99 (ms) | ${lat.fleet.queued.p50} / ${lat.fleet.queued.p99}; ${lat.fleet.taken.p50} / ${lat.fleet.taken.p99} | — | ${lat.raw.queued.p50} / ${lat.raw.queued.p99}; ${lat.raw.taken.p50} / ${lat.raw.taken.p99}; behind a bare HTTP server ${lat.front.queued.p50} / ${lat.front.queued.p99}; ${lat.front.taken.p50} / ${lat.front.taken.p99} | — | — |`,
    `| pickup latency, submit → result p50 / p95 / p99 (ms) | ${lat.fleet.result.p50} / ${lat.fleet.result.p95} / ${lat.fleet.result.p99} | — | ${lat.raw.result.p50} / ${lat.raw.result.p95} / ${lat.raw.result.p99} | — | — |`,
    `| Redis memory per retained finished task (bytes; job, result, timing event) | ${fmt(m.redis_bytes_per_retained_task)} | ${fmt(m.redis_bytes_per_retained_equal_job)} | ${fmt(m.redis_bytes_per_retained_raw_job)} | ${r2(m.redis_bytes_per_retained_task / m.redis_bytes_per_retained_raw_job)} of bare | ≤ 2 of bare: ${mark(m.redis_bytes_per_retained_task / m.redis_bytes_per_retained_raw_job <= 2)} |`,
    `| analyzer ingest (events/s; CPU per event) | ${fmt(ing.rate)} (analyzer ${ing.cpuPerEvent.analyzer.toFixed(1)} µs, Redis ${ing.cpuPerEvent.redis.toFixed(1)} µs) | — | ${fmt(ing.raw)} (bare XRANGE); ${fmt(ing.consumer)} (a bare group consumer: XREADGROUP, JSON.parse, XACK) | ${r2(ing.rate / ing.raw)} of XRANGE; ${r2(ing.rate / ing.consumer)} of the consumer | ≥ 150,000/s: ${mark(ing.rate >= 150_000)} |`,
    `| ${nodeSession.files} short test files on ${nodeSession.slots} slots, one task per file in a Node test session per slot (\`runners.warm: {".mjs": "session"}\`) vs \`node --test --test-concurrency=${nodeSession.slots}\`; first run / later runs (s) | ${firstLater(nodeSession.first_s, nodeSession.history_s)} | — | ${r2(nodeSession.runner_s)} (node --test) | ${firstLater(nodeSession.first_ratio, nodeSession.history_ratio)} (same verdicts: ${nodeSession.same_verdicts ? 'yes' : 'NO'}) | ≥ 1.0 on the first run and by history: ${mark(nodeSession.first_ratio >= 1 && (nodeSession.history_ratio ?? 0) >= 1)} |`,
    `| the same suite, each file a node process of its own (the default): one task per file vs \`node --test --test-concurrency=${suite.slots}\` (s) | ${r2(suite.fleet_s)} | — | ${r2(suite.runner_s)} (node --test) | ${r2(suite.ratio)} (runner ÷ fleet; same verdicts: ${suite.same_verdicts ? 'yes' : 'NO'}) | — |`,
    `| first run (no history) / later runs (by history), each file a process of its own (s) | ${firstLater(suite.first_s, suite.history_s)} | — | ${r2(suite.runner_s)} (node --test) | ${firstLater(suite.first_ratio, suite.history_ratio)} | — |`,
    pySession && pySuite
      ? [
          `| ${pySession.files} short pytest files on ${pySession.slots} slots, one task per file in a pytest session per slot (\`runners.warm: "session"\`) vs \`pytest -n ${pySession.slots}\` (pytest-xdist); first run / later runs (s) | ${firstLater(pySession.first_s, pySession.history_s)} | — | ${r2(pySession.runner_s)} (pytest -n ${pySession.slots}) | ${firstLater(pySession.first_ratio, pySession.history_ratio)} (same verdicts: ${pySession.same_verdicts ? 'yes' : 'NO'}) | ≥ 1.0 on the first run and by history: ${mark(pySession.first_ratio >= 1 && (pySession.history_ratio ?? 0) >= 1)} |`,
          `| the same pytest suite, each file forked from a warm Python (the default, \`runners.warm: true\`); first run / later runs (s) | ${firstLater(pySuite.first_s, pySuite.history_s)} | — | ${r2(pySuite.runner_s)} (pytest -n ${pySuite.slots}) | ${firstLater(pySuite.first_ratio, pySuite.history_ratio)} (same verdicts: ${pySuite.same_verdicts ? 'yes' : 'NO'}) | — |`,
        ].join('\n')
      : '| pytest suite vs `pytest -n 2` | not run: no python3 with pytest-xdist | — | — | — | — |',
    ...(pyCold
      ? [
          `| the same pytest suite run cold (\`runners.warm: false\`: a Python and pytest started per file); first run / later runs (s) | ${firstLater(pyCold.first_s, pyCold.history_s)} | — | ${r2(pyCold.runner_s)} (pytest -n ${pyCold.slots}) | ${firstLater(pyCold.first_ratio, pyCold.history_ratio)} | — |`,
        ]
      : []),
    `| fleet cost per test file: ${perFileCost.files} files of a no-op runner through one worker, one slot, vs spawning it directly from a shell loop (ms per file) | ${r2(perFileCost.cost_ms_per_file)} (${r2(perFileCost.fleet_ms_per_file)} a file in all${placementNote(perFileCost.placement)}) | — | ${r2(perFileCost.direct_ms_per_file)} from a shell (${r2(perFileCost.direct_from_node_ms_per_file)} from the bench's Node process) | — | ≤ 5 ms: ${mark(perFileCost.cost_ms_per_file <= 5)} |`,
    `| analyzer at ${fmt(analysis.series)} series: ingest (events/s) and analysis of the new samples (samples/s) | ${fmt(analysis.ingest_events_per_s)} events/s (${fmt(analysis.ingest_samples_per_s)} samples/s); analysis ${fmt(analysis.analysis_samples_per_s)} samples/s | — | ${fmt(analysis.xrange_events_per_s)} (bare XRANGE); ${fmt(analysis.consumer_events_per_s)} (a bare group consumer) | ingest ${r2(analysis.ingest_ratio)} of XRANGE, ${r2(analysis.ingest_events_per_s / analysis.consumer_events_per_s)} of the consumer; analysis ${r2(analysis.analysis_ratio)} of ingest | ingest ≥ 0.5: ${mark(analysis.ingest_ratio >= 0.5)}; analysis ≥ 1.0: ${mark(analysis.analysis_ratio >= 1)} |`,
    `| run end: the last file's end → the run's verdict, ${suite.files}-file run (ms, median) | ${fmt(suite.run_end_ms)} | — | — | — | ≤ 50 ms: ${mark(suite.run_end_ms <= 50)} |`,
    `| a one-file run at a commit, submit → test start (ms): a commit no host has / one the host has | ${fmt(src.submit_to_start_ms.cold)} / ${fmt(src.submit_to_start_ms.warm)} | — | ${fmt(src.submit_to_start_ms.workdir)} (from a fixed workdir) | — | — |`,
    `| ${src.files}-file run at a new commit vs the same files from a fixed workdir, 2 slots (s) | ${r2(src.suite_s.new_commit)} | — | ${r2(src.suite_s.workdir)} (workdir) | ${r2(src.ratio)} (workdir ÷ commit) | — |`,
    `| scale-up reaction (burst → first task on an added worker) | ${scale.seconds.toFixed(2)} s (${scale.ticks.toFixed(1)} ticks of 0.5 s) | — | — | — | — |`,
    `| makespan efficiency, ${span.files}-file skewed suite on ${span.slots} slots (ideal ${span.ideal_s.toFixed(2)} s ÷ wall) | ${r2(span.history.efficiency)} by history (${r2(span.history.wall_s)} s); ${r2(span.no_history.efficiency)} before any history | — | ${r2(span.hash_split.efficiency)} hash split like Jest --shard (${r2(span.hash_split.wall_s)} s) | — | ≥ 0.9 by history: ${mark(span.history.efficiency >= 0.9)} |`,
    `| CI nodes: ${ci.files}-file skewed suite on ${ci.nodes} nodes × ${ci.slots_per_node} slots, nodes starting ${ci.node_start_offsets_ms.join(' / ')} ms apart (ideal ${r2(ci.ideal_s)} s ÷ wall) | ${r2(ci.dynamic.efficiency)} dynamic, \`fleet run --build\` (${r2(ci.dynamic.wall_s)} s; ${r2(ci.dynamic_no_history.efficiency)} before any history) | — | ${r2(ci.timing_split.efficiency)} split by timings like CircleCI (${r2(ci.timing_split.wall_s)} s); ${r2(ci.hash_split.efficiency)} hash split (${r2(ci.hash_split.wall_s)} s) | ${r2(ci.dynamic.wall_s > 0 ? ci.timing_split.wall_s / ci.dynamic.wall_s : 0)} (timings ÷ dynamic) | ≥ 0.9 and ahead of both: ${mark(ci.dynamic.efficiency >= 0.9 && ci.dynamic.wall_s < ci.timing_split.wall_s && ci.dynamic.wall_s < ci.hash_split.wall_s)} |`,
    `| drain on a 3-master Redis Cluster, ${onCluster.pools} pools × 1 worker, ${fmt(onCluster.tasks)} tasks (tasks/s; one hash tag: every pool on one master) | ${fmt(onCluster.cluster_tasks_per_s)} | — | ${fmt(onCluster.one_redis_tasks_per_s)} (the fleet on one Redis) | ${r2(onCluster.ratio)} | — |`,
    `| the same drain with the pools spread (\`FLEET_SPREAD=pools\`: each pool on its own master) | ${fmt(onCluster.spread_tasks_per_s)} | — | ${fmt(onCluster.one_redis_tasks_per_s)} (the fleet on one Redis) | ${r2(onCluster.spread_ratio)} | — |`,
    `| peak RSS, worker / raw worker / coordinator / analyzer (MiB) | ${fmt(m.worker_peak_rss_mb)} / — / ${fmt(coordinatorRss)} / ${fmt(ing.rss ?? 0)} | — | ${fmt(m.raw_worker_peak_rss_mb)} | — | — |`,
  ].join('\n');
  const f1 = (n: number) => n.toFixed(1);
  const scalingTable = scaling.traces
    .flatMap((t) => {
      const row = (r: (typeof t.policies)[number]) =>
        `| ${r.policy} | ${f1(r.wait_p50_s)} / ${f1(r.wait_p95_s)} | ${f1(r.worker_s_working)} | ${f1(r.worker_s_after)} | ${f1(r.spare_s)} | ${r.back_to_zero_s === null ? '> 40' : f1(r.back_to_zero_s)} | ${r.scale_changes} | ${r.workers_started} | ${r.reversals} (${f1(r.startup_ms / 1000)} s) / ${r.reversals_2s} |`;
      const keda = t.policies.find((r) => r.policy === 'KEDA-like');
      const mine = t.policies.find((r) => r.policy === DEFAULT_STRATEGY);
      const total = (r: { worker_s_working: number; worker_s_after: number }) => r.worker_s_working + r.worker_s_after;
      const verdict =
        keda && mine && keda.wait_p95_s > 0
          ? `${DEFAULT_STRATEGY} (the default) ÷ KEDA-like: p95 wait ${r2(mine.wait_p95_s / keda.wait_p95_s)} (goal ≤ 0.8), worker-s ${r2(total(mine) / total(keda))} (goal ≤ 1), reversals ${mine.reversals} (goal 0): ${mark(mine.wait_p95_s <= 0.8 * keda.wait_p95_s && total(mine) <= total(keda) && mine.reversals === 0)}`
          : '';
      return [
        '',
        `Autoscaling, ${t.trace} trace: ${t.tasks} tasks (${f1(t.work_s)} worker-s of work), 0-${scaling.max_workers} workers, time-scaled by ${scaling.scale} (see bench/autoscale.ts)`,
        '',
        '| policy | p50 / p95 wait (s) | worker-s while working | worker-s after the last task | spare-s (waiting, no tasks) | back to 0 (s) | scale changes | workers started | down-then-up within a start-up (as measured) / within 2 s |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
        `| bound: ${scaling.max_workers} workers ready from the start, FIFO | ${f1(t.bound.p50_s)} / ${f1(t.bound.p95_s)} | — | — | — | — | — | — | — |`,
        ...t.policies.map(row),
        ...(verdict ? ['', verdict] : []),
      ];
    })
    .join('\n');
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(o.out, 'latest.md'), `${md}\n${scalingTable}\n`);
  console.log(`${md}\n${scalingTable}`);
}

try {
  await main();
} finally {
  rmSync(configDir, { recursive: true, force: true });
  redis.disconnect();
}
