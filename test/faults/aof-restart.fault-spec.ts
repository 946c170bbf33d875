import { decodeTimingEvent } from '@fleet/contracts';
import { isolatedSuite, waitFor } from '@fleet/testing';
import { faultConfigFiles, syntheticBatch, waitAllFinished } from './fault-fixtures.js';

describe('Redis (append-only file, fsync always) killed and restarted while 1,000 tasks are in flight', () => {
  const suite = isolatedSuite('aof', faultConfigFiles({ min_workers: 3, max_workers: 3, scaling_strategy: 'STATIC' }), {
    privateRedis: { appendonly: 'always' },
  });

  it('loses no task, completes none twice, and the analyzer counts every attempt once', async () => {
    // The production lock (10 s): a restart takes well under it, so no lock is lost to it.
    const env = { WORKER_LOCK_MS: '10000', WORKER_STALLED_INTERVAL_MS: '5000', WORKER_CONCURRENCY: '8' };
    const coordinator = await suite.service('coordinator');
    const analyzer = await suite.service('trend-analyzer');
    const rm = await suite.service('resource-manager', env);
    await waitFor(async () => (await rm.http.get('/pools/cpu').expect(200)).body.ready === 3, { what: 'three workers' });

    const ids: string[] = [];
    for (let i = 0; i < 2; i++)
      ids.push(
        ...((
          await coordinator.http
            .post('/tasks/batch')
            .send(syntheticBatch(500, { duration_ms: 60 }))
            .expect(201)
        ).body.ids as string[]),
      );
    await waitFor(async () => Number((await coordinator.http.get('/queues').expect(200)).body.pools[0].counts.completed) >= 200, {
      what: '200 tasks to complete first',
    });
    await suite.server.restart('SIGKILL');

    expect(await waitAllFinished(coordinator, ids, 120_000)).toEqual({ completed: 1000 });
    const counts = (await coordinator.http.get('/queues').expect(200)).body.pools[0].counts;
    expect(counts).toMatchObject({ completed: 1000, failed: 0, active: 0, waiting: 0, prioritized: 0 });

    // Completed twice would show as two attempts of one task that both completed.
    const completedAttempts = new Map<string, Set<number>>();
    const attempts = new Set<string>();
    for (const [, fields] of await suite.redis.xrange(suite.keys.timings, '-', '+')) {
      const r = decodeTimingEvent(fields);
      if (!r.ok) continue;
      attempts.add(`${r.event.task_id}#${r.event.attempt}`);
      if (r.event.outcome === 'completed')
        completedAttempts.set(r.event.task_id, (completedAttempts.get(r.event.task_id) ?? new Set()).add(r.event.attempt));
    }
    expect(completedAttempts.size).toBe(1000);
    expect([...completedAttempts.values()].filter((s) => s.size > 1)).toEqual([]);
    await waitFor(
      async () => {
        const e = (await analyzer.http.get('/metrics/summary').expect(200)).body.events;
        return e.unread === 0 && e.pending === 0 ? e : undefined;
      },
      { what: 'the analyzer to catch up', timeoutMs: 30_000 },
    ).then((e) => expect(e).toMatchObject({ processed: attempts.size, lost_before_read: 0, gaps: [] }));
  });
});
