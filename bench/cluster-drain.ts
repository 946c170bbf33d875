// Drain on a 3-master Redis Cluster against one Redis, in one run: three pools, one worker each, the same
// tasks. Every Redis is private and fresh. On the cluster twice: with every key under the fleet's one hash tag
// (the three pools share one master), and with the pools spread (FLEET_SPREAD=pools, a prefix whose pools land
// on three different masters). On one machine no gain is expected: it shows the spread works and what it costs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { compactQueuedTask, newTaskId, parseTask } from '@fleet/contracts';
import { clusterMasterOf, createRedis, FleetKeys, type FleetSpread, taskJobOptions, WorkerRegistry } from '@fleet/redis';
import { type Proc, redisServers, run, until } from './bench-support.js';

const POOLS = ['p1', 'p2', 'p3'];

export async function clusterDrain(opts: { dist: (...p: string[]) => string; tasksPerPool: number; concurrency: number; log: (m: string) => void }) {
  const { startRedisCluster, startRedisServer } = await redisServers();
  const configDir = mkdtempSync(join(tmpdir(), 'fleet-bench-cluster-'));
  writeFileSync(
    join(configDir, 'worker_templates.json'),
    JSON.stringify(
      Object.fromEntries(POOLS.map((p) => [p, { provider: 'LOCAL', resources: { cpu: 1 }, concurrency: opts.concurrency, capabilities: [p] }])),
    ),
  );
  const parsed = parseTask({ type: 'synthetic', name: 'noop', config: { duration_ms: 0 } });
  if (!parsed.ok) throw new Error('bad bench task');
  const task = parsed.value;
  const drainOn = async (url: string, spread: FleetSpread) => {
    const client: Redis = createRedis(url, 'consumer', 'bench-cluster');
    let prefix = '{bench-cluster}';
    // Spread: a fleet name whose three pools' tags sit on three different masters.
    for (let i = 0; spread === 'pools'; i++) {
      const owners = await Promise.all(POOLS.map((p) => clusterMasterOf(client, `{bench-${i}:${p}}:x`)));
      if (new Set(owners).size === POOLS.length || i === 500) {
        prefix = `{bench-${i}}`;
        break;
      }
    }
    const keys = new FleetKeys(prefix, spread);
    const queues = POOLS.map((p) => new Queue(p, { connection: client, prefix: keys.queuePrefix(p) }));
    const workers: Proc[] = [];
    try {
      for (const q of queues) {
        await q.pause();
        for (let i = 0; i < opts.tasksPerPool; i += 1000) {
          const n = Math.min(1000, opts.tasksPerPool - i);
          await q.addBulk(
            Array.from({ length: n }, () => ({
              name: task.type,
              data: compactQueuedTask(task, 'bench'),
              opts: taskJobOptions(newTaskId('bench'), task),
            })),
          );
        }
      }
      const env = { REDIS_URL: url, FLEET_PREFIX: prefix, FLEET_SPREAD: spread, CONFIG_DIR: configDir, WORKER_HEARTBEAT_MS: '200' };
      for (const p of POOLS) workers.push(run([opts.dist('apps', 'worker', 'src', 'main.js'), '--pool', p, '--id', `c-${p}`], env));
      const registry = new WorkerRegistry(client, keys);
      await until(async () => (await registry.list()).length === POOLS.length, 'the cluster bench workers to register', 60_000);
      const total = POOLS.length * opts.tasksPerPool;
      const t0 = performance.now();
      await Promise.all(queues.map((q) => q.resume()));
      await until(
        async () => {
          let done = 0;
          for (const q of queues) done += (await q.getJobCounts('completed')).completed ?? 0;
          return done === total;
        },
        `${total} tasks on ${url}`,
        300_000,
        20,
      );
      return total / ((performance.now() - t0) / 1000);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await Promise.all(queues.map((q) => q.close()));
      client.disconnect();
    }
  };
  try {
    const one = await startRedisServer();
    let oneRate: number;
    try {
      oneRate = await drainOn(one.url, 'none');
    } finally {
      await one.stop('SIGKILL');
    }
    opts.log(`cluster drain: one Redis ${Math.round(oneRate)} tasks/s`);
    const cluster = await startRedisCluster({ masters: 3 });
    let clusterRate: number;
    let spreadRate: number;
    try {
      clusterRate = await drainOn(cluster.url, 'none');
      spreadRate = await drainOn(cluster.url, 'pools');
    } finally {
      await cluster.stop();
    }
    opts.log(`cluster drain: 3-master cluster ${Math.round(clusterRate)} tasks/s one tag, ${Math.round(spreadRate)} tasks/s pools spread`);
    return {
      pools: POOLS.length,
      tasks: POOLS.length * opts.tasksPerPool,
      one_redis_tasks_per_s: oneRate,
      cluster_tasks_per_s: clusterRate,
      ratio: clusterRate / oneRate,
      spread_tasks_per_s: spreadRate,
      spread_ratio: spreadRate / oneRate,
    };
  } finally {
    rmSync(configDir, { recursive: true, force: true });
  }
}
