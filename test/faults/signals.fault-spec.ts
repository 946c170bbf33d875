import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@fleet/config';
import { freePort, isAlive, isolatedSuite, waitFor } from '@fleet/testing';
import { pidsWithCookie } from '@fleet/exec';
import { faultConfigFiles, syntheticBatch } from './fault-fixtures.js';

/** Every process still running that belongs to this fleet: each one inherits FLEET_PREFIX. */
const fleetProcesses = (prefix: string) => pidsWithCookie('FLEET_PREFIX', prefix).filter(isAlive);

describe('signals from a terminal and from a dying parent', () => {
  const suite = isolatedSuite('signals', faultConfigFiles({ min_workers: 2, max_workers: 2, scaling_strategy: 'STATIC' }, { polling_interval: 1 }));
  const counts = async () => suite.queue('cpu').queue.getJobCounts('active', 'completed', 'prioritized', 'waiting', 'failed');

  it('Ctrl-C on `npm start | tee fleet.log` in a terminal: tasks in flight end completed, none stays active, no process is left behind', async () => {
    const ports = {
      COORDINATOR_PORT: await freePort(),
      RESOURCE_MANAGER_PORT: await freePort(),
      TREND_ANALYZER_PORT: await freePort(),
      DASHBOARD_PORT: await freePort(),
    };
    const env = {
      ...process.env,
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      REDIS_URL: suite.redisUrl,
      FLEET_PREFIX: suite.prefix,
      CONFIG_DIR: suite.config.path,
      FLEET_SKIP_SETUP: '1',
      NO_COLOR: '1',
    };
    const log = join(suite.config.path, 'fleet.log');
    // `script` gives the pipeline a pseudo-terminal: a ^C written to it reaches the foreground process group
    // (npm's node, the apps, tee) as SIGINT, exactly as a key press would.
    const command = `node ${JSON.stringify(join(repoRoot(), 'scripts', 'fleet.mjs'))} start 2>&1 | tee ${JSON.stringify(log)}`;
    const terminal = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    terminal.stdout.on('data', (b: Buffer) => (screen += b.toString()));
    const ended = new Promise<number | null>((resolve) => terminal.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => screen.includes('the fleet is running'), { what: 'the fleet to come up', timeoutMs: 60_000, intervalMs: 100 });
      const submitted = await fetch(`http://127.0.0.1:${ports.COORDINATOR_PORT}/tasks/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(syntheticBatch(4, { duration_ms: 3000 })),
      });
      expect(submitted.status).toBe(201);
      await waitFor(async () => (await counts()).active === 4, { what: 'four tasks in flight' });
      expect(fleetProcesses(suite.prefix).length).toBeGreaterThanOrEqual(7); // three apps, two workers, two guards

      terminal.stdin.write('\x03');
      await waitFor(async () => terminal.exitCode !== null || terminal.signalCode !== null, {
        what: 'the terminal session to end',
        timeoutMs: 60_000,
      });
      await ended;
      await waitFor(() => fleetProcesses(suite.prefix).length === 0, {
        what: `no process of the fleet left (${fleetProcesses(suite.prefix).join(', ')})`,
        timeoutMs: 15_000,
      });
      expect(await counts()).toMatchObject({ active: 0, completed: 4, failed: 0 });
    } finally {
      for (const pid of fleetProcesses(suite.prefix)) process.kill(pid, 'SIGKILL');
      terminal.kill('SIGKILL');
    }
  });

  it('a resource manager killed with SIGKILL while its workers run and log: they finish their tasks, record them and exit', async () => {
    const rm = await suite.service('resource-manager');
    await waitFor(async () => (await rm.http.get('/pools/cpu').expect(200)).body.ready === 2, { what: 'two workers' });
    const before = (await counts()).completed;
    await suite.queue('cpu').add(...syntheticBatch(2, { duration_ms: 2000 }).tasks);
    await waitFor(async () => (await counts()).active === 2, { what: 'two tasks in flight' });
    rm.child.kill('SIGKILL');
    await rm.exited;
    await waitFor(async () => (await counts()).completed === before + 2, {
      what: 'both tasks to complete after the manager died',
      timeoutMs: 30_000,
    });
    await waitFor(() => fleetProcesses(suite.prefix).length === 0, { what: 'the orphaned workers (and their guards) to exit', timeoutMs: 15_000 });
    // They left the registry themselves: a worker that crashed would still be listed until its entry expired.
    expect(await suite.redis.zcard(suite.keys.workerIndex)).toBe(0);
  });
});
