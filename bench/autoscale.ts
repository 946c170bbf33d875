// Autoscaling on a bursty day, time-scaled by 30: a seeded trace (a trickle, three bursts, a ramp, quiet tails)
// of sleep tasks of 0.2-2 s, replayed on the same pool (0-6 workers, one task each) under each policy of the
// resource manager and under a KEDA-like controller driving the pool through the pin API. Real time ÷ 30:
// KEDA's 30 s polling → 1 s, HPA's 15 s sync → 0.5 s, 300 s cooldowns and stabilization → 10 s, the seed's
// 600 s scale-down cooldown → 20 s, its 120 s start-up buffer → 4 s. Worker start-up is not scaled (real
// processes), which makes it 30 times longer relative to the trace than it would be: hard on every policy alike.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { compactQueuedTask, newTaskId, parseTask } from '@fleet/contracts';
import { deleteMatching, FleetKeys, taskJobOptions } from '@fleet/redis';
import { seededRandom } from '@fleet/stats';
import { freePort, jsonApi, pct, type Proc, run, until } from './bench-support.js';

const MAX_WORKERS = 6;
const SCALE = 30;

/** The trace: when each task arrives (ms from the start) and how long it runs. */
export function burstyTrace(seed = 7): Array<{ at: number; ms: number }> {
  const rnd = seededRandom(seed);
  const out: Array<{ at: number; ms: number }> = [];
  const add = (at: number) => out.push({ at: Math.round(at), ms: Math.round(200 + rnd() * 1800) });
  for (let t = 0; t < 10_000; t += 2500) add(t); // a trickle
  for (let i = 0; i < 40; i++) add(10_000 + rnd() * 500); // burst 1
  for (let t = 12_000; t < 25_000; t += 3000) add(t); // a trickle
  for (let i = 0; i < 120; i++) add(25_000 + rnd() * 1000); // burst 2
  // a ramp: from one task every 2 s to four a second over 15 s
  for (let t = 40_000; t < 55_000;) {
    add(t);
    t += 2000 - ((t - 40_000) / 15_000) * 1750;
  }
  for (let i = 0; i < 70; i++) add(62_000 + rnd() * 500); // burst 3, then a quiet tail
  return out.sort((a, b) => a.at - b.at);
}

interface PolicyRun {
  policy: string;
  tasks: number;
  wait_p50_s: number;
  wait_p95_s: number;
  worker_s_working: number;
  worker_s_after: number;
  back_to_zero_s: number | null;
  scale_changes: number;
  workers_started: number;
  reversals: number;
}

/** The KEDA-like controller: metrics-api `in_flight` every second, HPA's ceil(value / target) with its rules. */
function kedaLike(target = 1) {
  const recommendations: Array<{ at: number; n: number }> = [];
  let lastActive = 0;
  return (now: number, inFlight: number, current: number): number => {
    if (inFlight > 0) lastActive = now;
    // Activation: 0 ↔ 1 is KEDA's; the cooldown to 0 counts from the last activity (300 s → 10 s).
    if (current === 0) return inFlight > 0 ? 1 : 0;
    if (inFlight === 0 && now - lastActive >= 10_000) return 0;
    const desired = Math.min(MAX_WORKERS, Math.max(1, Math.ceil(inFlight / target)));
    recommendations.push({ at: now, n: desired });
    while (recommendations.length > 0 && (recommendations[0]?.at ?? now) < now - 10_000) recommendations.shift();
    // Up: no stabilization, at most max(+4, +100 %) per sync; down: the highest recommendation in the window.
    if (desired > current) return Math.min(desired, Math.max(current + 4, current * 2));
    return Math.max(...recommendations.map((r) => r.n));
  };
}

export async function autoscale(opts: { redis: Redis; url: string; dist: (...p: string[]) => string; log: (m: string) => void }) {
  const trace = burstyTrace();
  // BENCH_POLICIES=DEMAND,KEDA-like runs only those (the bench's table wants them all, in one run).
  const policies = ['STEPWISE', 'ADAPTIVE', 'PREDICTIVE', 'DEMAND', 'KEDA-like'].filter(
    (p) => !process.env.BENCH_POLICIES || process.env.BENCH_POLICIES.split(',').includes(p),
  );
  const results: PolicyRun[] = [];
  for (const policy of policies) {
    results.push(await runPolicy(policy, trace, opts));
    opts.log(`autoscale ${policy}: ${JSON.stringify(results.at(-1))}`);
  }
  return { scale: SCALE, tasks: trace.length, max_workers: MAX_WORKERS, policies: results };
}

async function runPolicy(
  policy: string,
  trace: Array<{ at: number; ms: number }>,
  opts: { redis: Redis; url: string; dist: (...p: string[]) => string },
): Promise<PolicyRun> {
  const prefix = `bench-${process.pid}-auto-${policy.toLowerCase().replace(/[^a-z]/g, '')}`;
  const keys = new FleetKeys(prefix);
  const dir = mkdtempSync(join(tmpdir(), 'fleet-autoscale-'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'worker_templates.json'), JSON.stringify({ auto: { resources: { cpu: 1 }, concurrency: 1 } }));
  const keda = policy === 'KEDA-like';
  writeFileSync(
    join(dir, 'resource_manager_config.json'),
    JSON.stringify({
      min_workers: 0,
      max_workers: MAX_WORKERS,
      polling_interval: 30 / SCALE,
      scaling_strategy: keda ? 'STATIC' : policy,
      target_backlog_per_worker: 1,
      queue_threshold_high: 2,
      queue_threshold_low: 1,
      scale_up_cooldown: 300 / SCALE,
      scale_down_cooldown: 600 / SCALE,
      scale_down_stabilization: policy === 'DEMAND' ? 60 / SCALE : 300 / SCALE,
      worker_startup_buffer: 120 / SCALE,
      max_step_up: 2,
      max_step_down: 2,
      stop_grace_period: 30,
      deprovision_on_stop: true,
    }),
  );
  writeFileSync(join(dir, 'performance_analyzer_config.json'), JSON.stringify({ polling_interval: 1 }));
  const env = { REDIS_URL: opts.url, FLEET_PREFIX: prefix, CONFIG_DIR: dir, WORKER_HEARTBEAT_MS: '200', RATE_LIMIT_PER_MINUTE: '1000000' };
  const port = await freePort();
  const procs: Proc[] = [
    run([opts.dist('apps', 'resource-manager', 'src', 'main.js')], { ...env, RESOURCE_MANAGER_PORT: String(port) }),
    run([opts.dist('apps', 'trend-analyzer', 'src', 'main.js')], { ...env, TREND_ANALYZER_PORT: String(await freePort()) }),
  ];
  const rm = jsonApi(`http://127.0.0.1:${port}`);
  const queue = new Queue('auto', { connection: opts.redis, prefix: keys.queuePrefix('auto') });
  const samples: Array<{ at: number; running: number }> = [];
  const workersSeen = new Set<string>();
  let pinChanges = 0;
  let stop = false;
  try {
    await until(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok, 'the resource manager', 30_000, 50);
    if (keda) await rm('PUT', '/pools/auto', { workers: 0 });
    const t0 = Date.now();
    // The observer: workers alive (the cost), every 200 ms; and for KEDA-like, the controller every second.
    const observe = (async () => {
      const controller = kedaLike();
      let nextSync = 0;
      while (!stop) {
        const view = await rm<{ running: number; workers: Array<{ id: string }> }>('GET', '/pools/auto');
        const now = Date.now();
        samples.push({ at: now - t0, running: view.running });
        for (const w of view.workers) workersSeen.add(w.id);
        if (keda && now >= nextSync) {
          nextSync = now + 1000;
          const c = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
          const inFlight = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.active ?? 0);
          const pinned = await rm<{ pinned_workers: number | null }>('GET', '/pools/auto');
          const next = controller(now, inFlight, pinned.pinned_workers ?? 0);
          if (next !== pinned.pinned_workers) {
            await rm('PUT', '/pools/auto', { workers: next });
            pinChanges++;
          }
        }
        await sleep(200);
      }
    })();
    // The trace, replayed on time.
    const ids: string[] = [];
    for (let i = 0; i < trace.length;) {
      const due = trace.filter((t, j) => j >= i && t.at <= Date.now() - t0);
      if (due.length === 0) {
        await sleep(Math.max(1, (trace[i]?.at ?? 0) - (Date.now() - t0)));
        continue;
      }
      const jobs = due.map((t) => {
        const task = parseTask({ type: 'synthetic', name: 'trace', config: { duration_ms: t.ms } });
        if (!task.ok) throw new Error('bad task');
        const id = newTaskId('auto');
        ids.push(id);
        return { name: 'synthetic', data: compactQueuedTask(task.value, 'bench'), opts: taskJobOptions(id, task.value) };
      });
      await queue.addBulk(jobs);
      i += due.length;
    }
    await until(async () => (await queue.getJobCounts('completed')).completed === ids.length, 'every trace task to complete', 600_000, 200);
    const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
    const lastEnd = Math.max(...jobs.map((j) => j?.finishedOn ?? 0)) - t0;
    // The quiet after: until the pool is back at 0, or 40 s (scaled) at most.
    await until(async () => (samples.at(-1)?.running ?? 1) === 0 || Date.now() - t0 > lastEnd + 40_000, 'the pool to go back to 0', 60_000, 200);
    stop = true;
    await observe;
    const waits = jobs.map((j) => ((j?.processedOn ?? 0) - (j?.timestamp ?? 0)) / 1000);
    const workerSeconds = (from: number, to: number) =>
      samples.reduce((s, x, k) => {
        const next = samples[k + 1]?.at ?? x.at;
        const a = Math.max(from, x.at);
        const b = Math.min(to, next);
        return b > a ? s + (x.running * (b - a)) / 1000 : s;
      }, 0);
    const zero = samples.find((s) => s.at > lastEnd && s.running === 0);
    // A reversal: the pool shrank and then grew again within a worker's start-up time (2 s here).
    let reversals = 0;
    for (let k = 1; k < samples.length; k++) {
      const prev = samples[k - 1];
      const cur = samples[k];
      if (!prev || !cur || cur.running >= prev.running) continue;
      if (samples.some((s) => s.at > cur.at && s.at - cur.at < 2000 && s.running > cur.running)) reversals++;
    }
    const decisions = keda ? pinChanges : (await rm<{ decisions: unknown[] }>('GET', '/decisions?pool=auto&limit=1000')).decisions.length;
    return {
      policy,
      tasks: ids.length,
      wait_p50_s: pct(waits, 50) ?? 0,
      wait_p95_s: pct(waits, 95) ?? 0,
      worker_s_working: workerSeconds(0, lastEnd),
      worker_s_after: workerSeconds(lastEnd, Infinity),
      back_to_zero_s: zero ? (zero.at - lastEnd) / 1000 : null,
      scale_changes: decisions,
      workers_started: workersSeen.size,
      reversals,
    };
  } finally {
    stop = true;
    await queue.close();
    await Promise.all(procs.map((p) => p.stop()));
    await deleteMatching(opts.redis, `${prefix}:*`);
    rmSync(dir, { recursive: true, force: true });
  }
}
