import { decodeTimingEvent } from '@fleet/contracts';
import { isolatedSuite, waitFor } from '@fleet/testing';
import { suiteCoordinator, waitForFinished, waitForState } from './coordinator-harness.js';
import { seedConfigFiles } from './fixtures.js';

describe('a worker killed with SIGKILL in the middle of its tasks', () => {
  const suite = isolatedSuite('crash', seedConfigFiles());
  const coordinatorOf = suiteCoordinator(suite);

  it('has its tasks finished by another worker, each counted once, none lost', async () => {
    const doomed = suite.worker({ pool: 'cpu-worker', id: 'doomed', concurrency: 2 });
    const long = (
      await coordinatorOf()
        .http.post('/tasks')
        .send({ type: 'synthetic', name: 'long', priority: 9, config: { duration_ms: 3000 } })
        .expect(201)
    ).body.id;
    const running = await waitForState(coordinatorOf(), long, 'active');
    expect(running.worker_id).toBe('doomed');
    const rest = (
      await coordinatorOf()
        .http.post('/tasks/batch')
        .send({ tasks: Array.from({ length: 20 }, (_, i) => ({ type: 'synthetic', name: `t${i}`, config: { duration_ms: 200 } })) })
        .expect(201)
    ).body.ids as string[];

    doomed.child.kill('SIGKILL');
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    suite.worker({ pool: 'cpu-worker', id: 'survivor', concurrency: 4 });

    const ids = [long, ...rest];
    const views = await waitForFinished(coordinatorOf(), ids, 60_000);
    expect(views.filter((v) => v.state !== 'completed')).toEqual([]);
    const longView = views[0];
    expect(longView?.worker_id).toBe('survivor');
    expect(longView?.attempts.started).toBe(2);
    expect(longView?.attempts.made).toBe(1);

    // Exactly one completion per task in the timing stream: nothing lost, nothing run to completion twice.
    const completions = new Map<string, number>();
    await waitFor(
      async () => {
        completions.clear();
        for (const [, fields] of await suite.redis.xrange(suite.keys.timings, '-', '+')) {
          const r = decodeTimingEvent(fields);
          if (r.ok && r.event.outcome === 'completed') completions.set(r.event.task_id, (completions.get(r.event.task_id) ?? 0) + 1);
        }
        return completions.size === ids.length;
      },
      { what: 'a completion event per task' },
    );
    expect([...completions.values()].every((n) => n === 1)).toBe(true);
    const counts = (await coordinatorOf().http.get('/queues').expect(200)).body.pools[0].counts;
    expect(counts).toMatchObject({ completed: ids.length, failed: 0, active: 0, waiting: 0, prioritized: 0 });
    // The dead worker's registry entry expires by itself.
    await waitFor(async () => !(await coordinatorOf().http.get('/workers')).body.workers.some((w: { id: string }) => w.id === 'doomed'), {
      what: 'the dead worker to leave the registry',
      timeoutMs: 10_000,
    });
  });
});
