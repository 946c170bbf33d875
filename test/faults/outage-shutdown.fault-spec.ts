import { isolatedSuite, waitFor } from '@fleet/testing';
import { faultConfigFiles } from './fault-fixtures.js';

describe('a shutdown while Redis is away', () => {
  const suite = isolatedSuite('outage', faultConfigFiles({ min_workers: 1, stop_grace_period: 5 }), { privateRedis: {} });

  it('ends every app within its grace (coordinator, resource manager and its worker, analyzer, a worker started by hand)', async () => {
    const env = { SHUTDOWN_GRACE_MS: '3000' };
    const apps = [await suite.service('coordinator', env), await suite.service('trend-analyzer', env), await suite.service('resource-manager', env)];
    const worker = suite.worker({ pool: 'cpu', id: 'by-hand', env });
    await waitFor(async () => (await suite.redis.zcard(suite.keys.workerIndex)) === 2, { what: "the manager's worker and the one started by hand" });

    await suite.server.kill();
    const exits = [...apps, worker].map((p) => {
      p.child.kill('SIGTERM');
      return p.exited;
    });
    // Graces: 3 s for each app's own steps; the manager's is its workers' stop_grace_period (5 s) plus 10 s.
    const ended = await waitFor(
      async () =>
        apps.every((a) => a.child.exitCode !== null || a.child.signalCode !== null) && worker.child.exitCode !== null
          ? Promise.all(exits)
          : undefined,
      {
        what: 'every app to exit during the outage',
        timeoutMs: 25_000,
        intervalMs: 100,
      },
    );
    expect(ended.map((e) => e.signal)).toEqual([null, null, null, null]);
  });
});
