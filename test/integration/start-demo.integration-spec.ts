import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { repoRoot } from '@fleet/config';
import { FleetKeys } from '@fleet/redis';
import { cleanupPrefix, distEntry, freePort, isAlive, TEST_REDIS_URL, testRedis, uniquePrefix, waitFor } from '@fleet/testing';

describe('npm start, then npm run demo, then Ctrl-C', () => {
  it('runs the example fleet, accounts for every example task, and leaves no process behind', async () => {
    const prefix = uniquePrefix('start');
    const redis: Redis = testRedis();
    const ports = {
      COORDINATOR_PORT: String(await freePort()),
      RESOURCE_MANAGER_PORT: String(await freePort()),
      TREND_ANALYZER_PORT: String(await freePort()),
      DASHBOARD_PORT: String(await freePort()),
    };
    const env = { ...process.env, ...ports, REDIS_URL: TEST_REDIS_URL, FLEET_PREFIX: prefix, FLEET_SKIP_SETUP: '1', NO_COLOR: '1' };
    const fleet = spawn(process.execPath, [join(repoRoot(), 'scripts', 'fleet.mjs'), 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    fleet.stdout.on('data', (b: Buffer) => (out += b.toString()));
    fleet.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => fleet.on('exit', (code) => resolve(code)));
    const pids = new Set<number>();
    try {
      await waitFor(() => out.includes('the fleet is running'), { what: 'npm start to bring the fleet up', timeoutMs: 60_000, intervalMs: 100 });
      const demo = spawnSync(process.execPath, [distEntry('cli'), 'demo', '--load', '30'], {
        env,
        encoding: 'utf8',
        timeout: 240_000,
      });
      expect(demo.status).toBe(0);
      const accounted = /accounted for: (\d+) of (\d+)/.exec(demo.stdout);
      expect(accounted?.[1]).toBe(accounted?.[2]);
      expect(Number(accounted?.[2])).toBe(5 + 30);
      // How many workers a sample saw depends on the machine's speed; the bounds do not: never above the example
      // config's max_workers, and workers did run.
      const { min_workers: min, max_workers: max } = JSON.parse(
        readFileSync(join(repoRoot(), 'examples', 'config', 'resource_manager_config.json'), 'utf8'),
      ) as { min_workers: number; max_workers: number };
      const sizes = [...(/fleet size over time: (.*)/.exec(demo.stdout)?.[1] ?? '').matchAll(/(\d+) @\d+s/g)].map((m) => Number(m[1]));
      expect(sizes.length).toBeGreaterThan(0);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(max);
      expect(Math.max(...sizes)).toBeGreaterThanOrEqual(Math.max(1, min));
      for (const id of await redis.zrange(new FleetKeys(prefix).workerIndex, 0, -1))
        pids.add(Number(await redis.hget(new FleetKeys(prefix).worker(id), 'pid')));
      // Each app's log lines are JSON here (not a terminal), carrying its pid.
      for (const m of out.matchAll(/\[(?:coordinator|resource-manager|trend-analyzer|dashboard)\] \{.*?"pid":(\d+)/g)) pids.add(Number(m[1]));
      expect(pids.size).toBeGreaterThanOrEqual(5);
    } finally {
      fleet.kill('SIGINT');
      expect(await exited).toBe(0);
      await waitFor(() => [...pids].every((pid) => !isAlive(pid)), { what: 'every fleet process to exit', timeoutMs: 10_000 });
      expect(out).toContain('every process stopped');
      await cleanupPrefix(redis, prefix);
      await redis.quit();
    }
  });
});
