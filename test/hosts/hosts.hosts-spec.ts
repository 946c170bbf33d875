import { type ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { FleetKeys, WorkerRegistry } from '@fleet/redis';
import {
  cpuTemplate,
  distEntry,
  FAST_WORKER_ENV,
  isAlive,
  makeConfigDir,
  type PrivateRedis,
  startRedisServer,
  TestTaskQueue,
  uniquePrefix,
  waitFor,
} from '@fleet/testing';
import { cutOff, makeHosts, type NetnsHost, netnsUnavailable, stopAll } from './netns.js';

const unavailable = netnsUnavailable();
if (unavailable) process.stdout.write(`hosts suite skipped: ${unavailable}\n`);
const maybe = unavailable ? describe.skip : describe;

const MAX = 6;

maybe('three hosts (network namespaces), each with a resource manager, one Redis reached over their links', () => {
  const prefix = uniquePrefix('hosts');
  const keys = new FleetKeys(prefix);
  const config = makeConfigDir({
    'worker_templates.json': { cpu: cpuTemplate({ concurrency: 2 }) },
    'resource_manager_config.json': {
      min_workers: 0,
      max_workers: MAX,
      polling_interval: 0.3,
      scaling_strategy: 'ADAPTIVE',
      target_backlog_per_worker: 4,
      scale_up_cooldown: 0.3,
      scale_down_cooldown: 60,
      scale_down_stabilization: 60,
      max_step_up: 6,
      stop_grace_period: 5,
      lease_ttl: 2,
    },
  });
  let net: ReturnType<typeof makeHosts>;
  let server: PrivateRedis;
  let redis: Redis;
  let queue: TestTaskQueue;
  const managers = new Map<string, { host: NetnsHost; child: ChildProcess; exited: Promise<unknown>; output: string[] }>();

  beforeAll(async () => {
    net = makeHosts(3);
    server = await startRedisServer({ extraArgs: ['--bind', '127.0.0.1', ...net.hosts.map((h) => h.gateway), '--protected-mode', 'no'] });
    redis = new Redis(server.url, { maxRetriesPerRequest: null });
    queue = new TestTaskQueue(server.url, prefix, 'cpu');
    net.hosts.forEach((host, i) => {
      const id = `h${i + 1}`;
      // `ip netns exec` execs node: the child's PID is the manager's own.
      const child = spawn('ip', ['netns', 'exec', host.ns, process.execPath, distEntry('resource-manager')], {
        env: {
          ...process.env,
          ...FAST_WORKER_ENV,
          REDIS_URL: `redis://${host.gateway}:${server.port}`,
          FLEET_PREFIX: prefix,
          CONFIG_DIR: config.path,
          RESOURCE_MANAGER_ID: id,
          RESOURCE_MANAGER_PORT: '0',
          RM_HOST_SLOTS: '2',
          LOG_FORMAT: 'json',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const output: string[] = [];
      for (const s of [child.stdout, child.stderr]) s.on('data', (b: Buffer) => output.push(b.toString()));
      managers.set(id, { host, child, exited: new Promise((r) => child.once('exit', r)), output });
    });
    await waitFor(async () => (await redis.hlen(keys.hosts)) === 3, { what: 'three hosts registered', timeoutMs: 30_000, intervalMs: 100 });
  });

  afterAll(async () => {
    await stopAll([...managers.values()], 20_000);
    await queue?.close();
    redis?.disconnect();
    await server?.stop('SIGKILL');
    net?.remove();
    config.remove();
  });

  it('a burst spreads over the three; a host cut off loses nothing, its share moves, the fleet never passes max_workers', async () => {
    const registry = new WorkerRegistry(redis, keys);
    const byHost = async () => {
      const counts: Record<string, number> = {};
      for (const w of await registry.list()) {
        const host = w.id.split('-cpu-')[0];
        counts[host] = (counts[host] ?? 0) + 1;
      }
      return counts;
    };
    let peak = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        peak = Math.max(peak, (await registry.list()).length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // About 25 s of work for six workers of two slots: the backlog outlasts the cut and the move, however slow the machine.
    let report: string;
    try {
      const ids = await queue.add(...Array.from({ length: 600 }, (_, i) => ({ type: 'synthetic', name: `s${i}`, config: { duration_ms: 500 } })));
      const spread = await waitFor(
        async () => {
          const c = await byHost();
          return ['h1', 'h2', 'h3'].every((h) => (c[h] ?? 0) >= 1) && Object.values(c).reduce((s, n) => s + n, 0) === MAX ? c : undefined;
        },
        { what: `the burst spread over three hosts at max_workers (${MAX})`, timeoutMs: 30_000, intervalMs: 100 },
      );
      // The wait above is the check: every host takes a share and the fleet reaches max_workers. The exact
      // shares depend on which hosts had beaten when the burst was first planned (a host that beats late joins
      // with what is left, and quotas are sticky): 2/2/2 on an idle machine, 1/3/2 seen under load. The quota
      // rules themselves are unit tables (libs/scaling/src/quotas.spec.ts).

      // Cut h2 off: its link goes down, its manager and its workers are killed (they held tasks).
      const h2 = managers.get('h2') as { host: NetnsHost; child: ChildProcess; exited: Promise<unknown> };
      const h2Workers = (await registry.list()).filter((w) => w.id.startsWith('h2-')).map((w) => w.pid);
      cutOff(h2.host);
      h2.child.kill('SIGKILL');
      for (const pid of h2Workers) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      await h2.exited;
      const cutAt = Date.now();
      let seen: unknown;

      const moved = await waitFor(
        async () => {
          const quotas = await redis.hgetall(keys.quotas);
          const c = await byHost();
          seen = { quotas, workers: c };
          return !('h2' in quotas) && (c.h2 ?? 0) === 0 && (c.h1 ?? 0) + (c.h3 ?? 0) === MAX ? { quotas, c } : undefined;
        },
        { what: 'h2’s share to move to h1 and h3', timeoutMs: 30_000, intervalMs: 100 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last seen ${JSON.stringify(seen)}`);
      });
      const movedMs = Date.now() - cutAt;
      expect(JSON.parse(moved.quotas.h1).cpu + JSON.parse(moved.quotas.h3).cpu).toBe(MAX);

      await waitFor(async () => (await queue.queue.getJobCounts('completed')).completed === ids.length, {
        what: `all ${ids.length} tasks completed (the cut host's recovered)`,
        timeoutMs: 90_000,
        intervalMs: 200,
      });
      report = `spread ${JSON.stringify(spread)}; h2's share moved within ${movedMs} ms`;
    } finally {
      // Stopped however the test ends: a sampler left running would query a closed connection in the next suite.
      watching = false;
      await watcher;
    }
    expect((await queue.queue.getJobCounts('failed')).failed).toBe(0);
    expect(peak).toBeLessThanOrEqual(MAX);
    process.stdout.write(`hosts: ${report}; peak ${peak} workers of ${MAX}\n`);
  });
});
