import { isolatedSuite, type Service, waitFor } from '@fleet/testing';
import { faultConfigFiles, jsonPost, statusOf, submitAndComplete } from './fault-fixtures.js';

describe('Redis restarted without persistence in the middle of a run (its data lost)', () => {
  const suite = isolatedSuite('restart', faultConfigFiles(), { privateRedis: {} });

  it('every app reconnects: 503 while it is away, work goes on after, the analyzer counts what follows and reports the loss, the fleet stays within max_workers', async () => {
    const analyzer = await suite.service('trend-analyzer');
    // Workers beat every 2 s: after the loss, the registry stays empty for up to that long while the manager ticks.
    const rm = await suite.service('resource-manager', { WORKER_HEARTBEAT_MS: '2000' });
    const coordinator = await suite.service('coordinator');
    const apps: Service[] = [coordinator, rm, analyzer];
    const poolSize = async () => (await rm.http.get('/pools/cpu').expect(200)).body as { running: number; workers: unknown[] };
    await waitFor(async () => (await poolSize()).running === 2, { what: 'two workers (min_workers)' });

    await submitAndComplete(coordinator, 20, { duration_ms: 50 });
    await waitFor(async () => (await analyzer.http.get('/metrics/summary')).body.events.processed === 20, {
      what: 'the analyzer to count 20 events',
    });

    await suite.server.kill();
    for (const app of apps) {
      // Bounded: each answers 503 (not a hang) within a few seconds of Redis going away.
      await waitFor(async () => (await statusOf(`${app.url}/health`)) === 503, { what: `${app.url}/health to answer 503`, timeoutMs: 15_000 });
    }
    expect(await statusOf(`${coordinator.url}/tasks`, jsonPost({ type: 'synthetic', name: 'while away' }))).toBe(503);

    await suite.server.start();
    // Watch the fleet's size while it recovers: never above max_workers (3), whatever the registry forgot.
    let most = 0;
    const watching = (async () => {
      for (let i = 0; i < 400 && most <= 3; i++) {
        most = Math.max(most, (await poolSize().catch(() => ({ workers: [] }))).workers.length);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    for (const app of apps)
      await waitFor(async () => (await statusOf(`${app.url}/health`)) === 200, { what: `${app.url}/health back to 200`, timeoutMs: 20_000 });
    await submitAndComplete(coordinator, 20, { duration_ms: 50 });
    await watching;
    expect(most).toBeLessThanOrEqual(3);
    await waitFor(async () => (await poolSize()).running === 2, { what: 'the pool back at exactly two workers' });

    const summary = await waitFor(
      async () => {
        const s = (await analyzer.http.get('/metrics/summary').expect(200)).body;
        return s.events.processed === 20 ? s : undefined;
      },
      { what: 'the analyzer to count the 20 events written after the loss', timeoutMs: 20_000 },
    );
    expect(summary.events).toMatchObject({ processed: 20, written: 20, lost_before_read: 0 });
    expect(summary.events.gaps).toHaveLength(1);
    expect(summary.events.gaps[0]).toMatchObject({ kind: 'data_lost', counted_before: 20 });
  });
});
