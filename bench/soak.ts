// `npm run soak [-- --tasks 100000] [--workers 4] [--concurrency 8] [--kill-every 3] [--pause-every 0] [--duration-ms 5]`
// The whole fleet (coordinator, resource manager with its workers, trend analyzer) under a long run while a
// worker is killed with SIGKILL every few seconds and the resource manager replaces it, and (with
// `--pause-every`) another is paused with SIGSTOP for 1-12 s, across its lock's renewal and expiry
// (WORKER_LOCK_MS, 10 s), then resumed with SIGCONT. It checks that every
// task ended completed once, that every recorded attempt has its timing event and the analyzer counted each
// once, and that Redis memory stays within what retention keeps and comes back when the fleet's keys go.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadCommonSettings, repoRoot } from '@fleet/config';
import { decodeTimingEvent } from '@fleet/contracts';
import { deleteMatching, FleetKeys, WorkerRegistry } from '@fleet/redis';
import { freePort, type Proc, run, until } from './bench-support.js';

const { values: o } = parseArgs({
  options: {
    tasks: { type: 'string', default: '5000' },
    workers: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '8' },
    'kill-every': { type: 'string', default: '3' },
    'pause-every': { type: 'string', default: '0' },
    'duration-ms': { type: 'string', default: '5' },
  },
});
const N = Number(o.tasks);
const W = Number(o.workers);
const C = Number(o.concurrency);
const KILL_EVERY_MS = Number(o['kill-every']) * 1000;
const PAUSE_EVERY_MS = Number(o['pause-every']) * 1000;
const DURATION_MS = Number(o['duration-ms']);
const BATCH = 1000;
const url = loadCommonSettings(process.env).redisUrl;
const prefix = `soak-${process.pid}-${Date.now().toString(36)}`;
const keys = new FleetKeys(prefix);
const redis = new Redis(url, { maxRetriesPerRequest: null });
const say = (msg: string) => process.stdout.write(`[soak] ${msg}\n`);
const dist = (app: string) => join(repoRoot(), 'dist', 'apps', app, 'src', 'main.js');
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);

/**
 * Whether `pid` is still the worker `id` (its command line says `--id <id>`): a killed worker's registry record
 * outlives it by its heartbeat's time to live, and its PID may by then be another process's, never to be signalled.
 */
function isWorker(pid: number, id: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a, i) => a === '--id' && argv[i + 1] === id);
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const configDir = mkdtempSync(join(tmpdir(), 'fleet-soak-'));
  writeFileSync(join(configDir, 'worker_templates.json'), JSON.stringify({ cpu: { provider: 'LOCAL', resources: { cpu: 1 }, concurrency: C } }));
  writeFileSync(
    join(configDir, 'resource_manager_config.json'),
    JSON.stringify({ min_workers: W, max_workers: W, scaling_strategy: 'STATIC', polling_interval: 0.5, lease_ttl: 3, stop_grace_period: 10 }),
  );
  writeFileSync(join(configDir, 'performance_analyzer_config.json'), JSON.stringify({ polling_interval: 5, metrics_grouping: ['pool'] }));
  const ports = { coordinator: await freePort(), rm: await freePort(), analyzer: await freePort() };
  const env = {
    REDIS_URL: url,
    FLEET_PREFIX: prefix,
    CONFIG_DIR: configDir,
    // Keep every task and every event readable until the checks have run.
    TASK_RETAIN_COMPLETED_COUNT: String(N),
    TIMINGS_MAXLEN: String(Math.max(100_000, 3 * N)),
    WORKER_HEARTBEAT_MS: '500',
    WORKER_LOCK_MS: '5000',
    WORKER_STALLED_INTERVAL_MS: '2000',
  };
  const baseline = await usedMemory();
  const manager = run([dist('resource-manager')], { ...env, RESOURCE_MANAGER_PORT: String(ports.rm) });
  const apps: Proc[] = [
    run([dist('coordinator')], { ...env, COORDINATOR_PORT: String(ports.coordinator) }),
    run([dist('trend-analyzer')], { ...env, TREND_ANALYZER_PORT: String(ports.analyzer) }),
    manager,
  ];
  // Stopped from outside (a test's timeout, Ctrl-C): the apps it started go too, and nothing is left in Redis.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void Promise.all(apps.map((a) => a.stop()))
        .then(() => deleteMatching(redis, `${prefix}:*`))
        .finally(() => process.exit(1));
    });
  }
  const api = (port: number, path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${port}${path}`, init);
  let killed = 0;
  let paused = 0;
  let killer: NodeJS.Timeout | undefined;
  let pauser: NodeJS.Timeout | undefined;
  const stopped = new Set<number>();
  try {
    for (const port of Object.values(ports))
      await until(async () => (await api(port, '/health').catch(() => undefined))?.ok, `the app on :${port}`, 60_000, 100);
    await until(async () => (await redis.zcard(keys.workerIndex)) >= W, `${W} workers`, 60_000, 100);
    const started = Date.now();
    say(`${N} tasks (synthetic, ${DURATION_MS} ms), ${W} workers × ${C}, a worker SIGKILLed every ${KILL_EVERY_MS / 1000} s; prefix ${prefix}`);

    // A worker killed every few seconds (by pid, from the registry); the resource manager replaces it. The
    // victims are workers that have done work, as the manager has seen (their heartbeat said so a tick ago): a
    // worker killed before it finished anything counts as a start-up crash, and enough of those are a crash
    // loop by design (the manager then stops starting workers), which is not what this soak measures.
    killer = setInterval(() => {
      void (async () => {
        const live = (await new WorkerRegistry(redis, keys).list()).filter((w) => w.completed + w.failed > 0 && Date.now() - w.started_at > 2000);
        const victim = live[Math.floor(Math.random() * live.length)];
        if (!victim || !isWorker(victim.pid, victim.id)) return;
        try {
          process.kill(victim.pid, 'SIGKILL');
          killed++;
        } catch {
          // gone already
        }
      })();
    }, KILL_EVERY_MS);

    // A worker paused at a random moment for 1-12 s: some resume before their lock's renewal, some after it
    // was due, some after it expired and another worker took the task. Each is resumed, never left stopped.
    if (PAUSE_EVERY_MS > 0) {
      pauser = setInterval(() => {
        void (async () => {
          const live = (await new WorkerRegistry(redis, keys).list()).filter((w) => w.completed + w.failed > 0 && !stopped.has(w.pid));
          const victim = live[Math.floor(Math.random() * live.length)];
          if (!victim || !isWorker(victim.pid, victim.id)) return;
          try {
            process.kill(victim.pid, 'SIGSTOP');
          } catch {
            return;
          }
          stopped.add(victim.pid);
          paused++;
          setTimeout(
            () => {
              stopped.delete(victim.pid);
              try {
                process.kill(victim.pid, 'SIGCONT');
              } catch {
                // killed meanwhile
              }
            },
            1000 + Math.random() * 11_000,
          );
        })();
      }, PAUSE_EVERY_MS);
    }

    for (let sent = 0; sent < N; sent += BATCH) {
      const n = Math.min(BATCH, N - sent);
      const tasks = Array.from({ length: n }, (_, i) => ({ type: 'synthetic', name: `soak ${sent + i}`, config: { duration_ms: DURATION_MS } }));
      const res = await api(ports.coordinator, '/tasks/batch', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tasks }),
      });
      if (res.status !== 201) throw new Error(`submitting: ${res.status} ${await res.text()}`);
    }
    const counts = async () =>
      ((await (await api(ports.coordinator, '/queues')).json()) as { pools: Array<{ counts: Record<string, number> }> }).pools[0]?.counts ?? {};
    let last = 0;
    await until(
      async () => {
        const c = await counts();
        if (Date.now() - last > 5000) {
          last = Date.now();
          say(
            `${c.completed ?? 0} completed, ${c.active ?? 0} active, ${(c.prioritized ?? 0) + (c.waiting ?? 0)} queued, ${killed} workers killed, ${paused} paused`,
          );
        }
        return (c.completed ?? 0) + (c.failed ?? 0) >= N;
      },
      'every task to finish',
      Math.max(600_000, N * 20),
      500,
    );
    clearInterval(killer);
    clearInterval(pauser);
    const seconds = (Date.now() - started) / 1000;
    const c = await counts();
    const peak = await usedMemory();

    // Before the stream is read, paused workers are resumed and every worker is stopped (with its manager), and
    // the analyzer has caught up: nothing can write an event after the read, so what the analyzer counted and
    // what the stream holds are compared on the same events.
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    stopped.clear();
    await manager.stop();
    await until(async () => (await new WorkerRegistry(redis, keys).list()).length === 0, 'the workers to leave', 30_000, 100);
    const analyzed = await until(
      async () => {
        const e = ((await (await api(ports.analyzer, '/metrics/summary')).json()) as { events: Record<string, number> }).events;
        return e.unread === 0 && e.pending === 0 ? e : undefined;
      },
      'the analyzer to catch up',
      120_000,
      500,
    );
    // Every recorded attempt has its event: the attempt each completed task finished on is in the stream.
    const completedAttempts = new Map<string, Set<number>>();
    const attempts = new Set<string>();
    let from = '-';
    for (;;) {
      const page = await redis.xrange(keys.timings, from, '+', 'COUNT', 10_000);
      for (const [, fields] of page) {
        const r = decodeTimingEvent(fields);
        if (!r.ok) continue;
        attempts.add(`${r.event.task_id}#${r.event.attempt}`);
        if (r.event.outcome === 'completed')
          completedAttempts.set(r.event.task_id, (completedAttempts.get(r.event.task_id) ?? new Set()).add(r.event.attempt));
      }
      if (page.length < 10_000) break;
      from = `(${(page.at(-1) as [string, string[]])[0]}`;
    }
    const ids = await redis.zrange(keys.queueKey('cpu', 'completed'), 0, -1);
    let missingEvent = 0;
    for (let i = 0; i < ids.length; i += 1000) {
      const p = redis.pipeline();
      for (const id of ids.slice(i, i + 1000)) p.hget(keys.queueKey('cpu', id), 'ats');
      const replies = (await p.exec()) ?? [];
      replies.forEach(([, ats], j) => {
        if (!completedAttempts.get(ids[i + j])?.has(Number(ats))) missingEvent++;
      });
    }
    const ranTwice = [...completedAttempts.values()].filter((s) => s.size > 1).length;
    for (const a of apps.reverse()) await a.stop();
    // The ones killed leave when their heartbeat entry expires; the others leave when stopped.
    await until(async () => (await new WorkerRegistry(redis, keys).list()).length === 0, 'the workers to leave', 30_000, 100);
    await deleteMatching(redis, `${prefix}:*`);
    const after = await usedMemory();

    const checks: Array<[string, boolean]> = [
      [`every task completed: ${c.completed} of ${N}, ${c.failed ?? 0} failed`, c.completed === N && (c.failed ?? 0) === 0],
      [`completed once each in the queue: ${ids.length} completed jobs for ${N} tasks`, ids.length === N],
      [`every recorded completion has its timing event (missing: ${missingEvent})`, missingEvent === 0],
      [
        `the analyzer counted each attempt once: ${analyzed.processed} counted, ${attempts.size} distinct attempts in the stream (${analyzed.duplicates} repeated writes ignored)`,
        analyzed.processed === attempts.size && analyzed.lost_before_read === 0,
      ],
      [
        `Redis memory within retention: ${mb(peak - baseline)} MiB at the end for ${N} retained tasks and ${attempts.size} events (${Math.round((peak - baseline) / N)} B per task); ${mb(after - baseline)} MiB once the fleet's keys are deleted`,
        peak - baseline < N * 6000 && after - baseline < 8 * 1024 * 1024,
      ],
    ];
    say(`${N} tasks in ${seconds.toFixed(1)} s (${Math.round(N / seconds)}/s), ${killed} workers killed and replaced, ${paused} paused and resumed`);
    say(
      `${ranTwice} task(s) ran to their end twice: a worker killed after its task finished, before the outcome was recorded (the task runs again; it is completed once)`,
    );
    say(`memory: baseline ${mb(baseline)} MiB, at the end ${mb(peak)} MiB, after deleting the fleet's keys ${mb(after)} MiB`);
    for (const [what, ok] of checks) say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    const passed = checks.every(([, ok]) => ok);
    say(passed ? 'soak passed' : 'soak FAILED');
    return passed ? 0 : 1;
  } finally {
    clearInterval(killer);
    clearInterval(pauser);
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    for (const a of apps) await a.stop();
    await deleteMatching(redis, `${prefix}:*`);
    rmSync(configDir, { recursive: true, force: true });
  }
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

main().then(
  async (code) => {
    await redis.quit();
    process.exit(code);
  },
  async (err: Error) => {
    say(`failed: ${err.stack ?? err.message}`);
    await redis.quit().catch(() => undefined);
    process.exit(1);
  },
);
