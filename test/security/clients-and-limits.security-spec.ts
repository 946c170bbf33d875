import { networkInterfaces } from 'node:os';
import { encodeTimingEvent } from '@fleet/contracts';
import { bearer, cpuTemplate, freePort, isolatedSuite, startApp, waitFor } from '@fleet/testing';
import { CLIENTS, openConfigFiles, securedConfigFiles } from './security-fixtures.js';

const task = (name: string, extra: object = {}) => ({ type: 'synthetic', name, ...extra });
const ci = bearer(CLIENTS.tokens.ci);
const other = bearer(CLIENTS.tokens.other);
const viewer = bearer(CLIENTS.tokens.viewer);
const ops = bearer(CLIENTS.tokens.ops);

describe('clients see their own tasks, own their idempotency keys, and are held to their limits', () => {
  const suite = isolatedSuite(
    'clients',
    securedConfigFiles({ 'performance_analyzer_config.json': { polling_interval: 0.3, max_series: 3, metrics_grouping: ['worker_id'] } }),
  );

  it("a submit client reads and cancels only its own tasks; read and operate clients see everyone's", async () => {
    const coordinator = await suite.service('coordinator');
    const mine = (await coordinator.http.post('/tasks').set(ci).send(task('mine')).expect(201)).body.id;
    expect((await coordinator.http.get(`/tasks/${mine}`).set(ci).expect(200)).body.submitted_by).toBe('ci');
    // Another submitter cannot tell it exists, let alone cancel it.
    expect((await coordinator.http.get(`/tasks/${mine}`).set(other)).status).toBe(404);
    expect((await coordinator.http.delete(`/tasks/${mine}`).set(other)).status).toBe(404);
    expect((await coordinator.http.get(`/tasks/${mine}`).set(viewer).expect(200)).body.state).toBe('queued');
    expect((await coordinator.http.delete(`/tasks/${mine}`).set(ops).expect(200)).body.state).toBe('cancelled');
  });

  it('idempotency keys are per client: the same key from two clients makes two tasks, and neither learns the other', async () => {
    const coordinator = await suite.service('coordinator');
    const a = (
      await coordinator.http
        .post('/tasks')
        .set(ci)
        .send(task('a', { idempotency_key: 'nightly' }))
        .expect(201)
    ).body;
    const b = (
      await coordinator.http
        .post('/tasks')
        .set(other)
        .send(task('b', { idempotency_key: 'nightly' }))
        .expect(201)
    ).body;
    expect(b.id).not.toBe(a.id);
    expect(b.duplicate).toBe(false);
    const again = (
      await coordinator.http
        .post('/tasks')
        .set(ci)
        .send(task('a', { idempotency_key: 'nightly' }))
        .expect(200)
    ).body;
    expect(again).toMatchObject({ id: a.id, duplicate: true });
  });

  it('queued-task cap: past MAX_QUEUED_PER_CLIENT in a pool a client gets 429 and nothing of the request is queued', async () => {
    const coordinator = await suite.service('coordinator', { MAX_QUEUED_PER_CLIENT: '10' });
    const queued = async () => (await suite.queue('cpu').queue.getJobCounts('prioritized')).prioritized ?? 0;
    const before = await queued();
    await coordinator.http
      .post('/tasks/batch')
      .set(ci)
      .send({ tasks: Array.from({ length: 8 }, (_, i) => task(`c${i}`)) })
      .expect(201);
    const refused = await coordinator.http
      .post('/tasks/batch')
      .set(ci)
      .send({ tasks: Array.from({ length: 3 }, (_, i) => task(`d${i}`)) });
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.body.errors[0].reason).toMatch(/at most 10 may wait/);
    expect(await queued()).toBe(before + 8);
    // The cap is per client: another submitter still queues.
    await coordinator.http
      .post('/tasks/batch')
      .set(other)
      .send({ tasks: Array.from({ length: 3 }, (_, i) => task(`e${i}`)) })
      .expect(201);
  });

  it('analyzer: past max_series, samples that would start a new series are refused, counted and reported', async () => {
    const analyzer = await suite.service('trend-analyzer');
    const send = async (from: number, to: number) => {
      const now = Date.now();
      for (let i = from; i < to; i++) {
        const e = { task_id: `cpu.${i}`, task_type: 'synthetic', pool: 'cpu', worker_id: `w${i}`, attempt: 1, outcome: 'completed', final: true };
        await suite.redis.xadd(
          suite.keys.timings,
          '*',
          ...encodeTimingEvent({ ...e, queued_at: now, started_at: now, finished_at: now, wait_ms: 0, run_ms: 5, metrics: {}, labels: {} } as never),
        );
      }
    };
    type Series = { kept: number; max: number; refused_samples: number; refused_derived_samples: number };
    type Summary = { generated_at: string; events: { processed: number; series: Series }; series: unknown[] };
    const summary = async () => (await analyzer.http.get('/metrics/summary').set(viewer).expect(200)).body as Summary;
    await send(0, 6);
    // Each event starts two series (run time and queue wait, per worker): 3 kept, 9 of the events' samples
    // refused, counted with the events in one commit. The pool's rates may be derived meanwhile (whenever an
    // analysis pass sees the counts move) and are refused too: they are counted apart.
    const counted = await waitFor(
      async () => {
        const s = await summary();
        return s.events.processed === 6 ? { at: Date.now(), series: s.events.series } : undefined;
      },
      { what: '6 events counted' },
    );
    const first = counted.series;
    expect(first).toEqual({ kept: 3, max: 3, refused_samples: 9 + first.refused_derived_samples, refused_derived_samples: expect.any(Number) });
    // An analysis pass that began after them (it has read the counts; before any pass the summary has no series and
    // the time of the request), then more completions: the next pass sees the counts move and derives the pool's
    // rates, whose series are held to the cap as well.
    await waitFor(
      async () => {
        const s = await summary();
        return s.series.length === 3 && Date.parse(s.generated_at) > counted.at;
      },
      { what: 'an analysis pass after the 6 events' },
    );
    await send(6, 9);
    const later = await waitFor(
      async () => {
        const { events } = await summary();
        return events.processed === 9 && events.series.refused_derived_samples > first.refused_derived_samples ? events.series : undefined;
      },
      { what: "the pool's rates to be derived and refused" },
    );
    expect(later).toEqual({ kept: 3, max: 3, refused_samples: 9 + 6 + later.refused_derived_samples, refused_derived_samples: expect.any(Number) });
  });
});

describe("one client's cap does not stop other clients' runs", () => {
  const suite = isolatedSuite(
    'capruns',
    securedConfigFiles({
      'worker_templates.json': { cpu: cpuTemplate(), parked: cpuTemplate({ provider: 'MANUAL', capabilities: ['PARKED'] }) },
    }),
  );

  it("a run whose released tasks hit its client's MAX_QUEUED_PER_CLIENT keeps them blocked; the other clients' runs are still released and finalized", async () => {
    const coordinator = await suite.service('coordinator', { MAX_QUEUED_PER_CLIENT: '10', RUNS_TICK_MS: '200' });
    // ci's run: a setup, then twelve tasks for a pool no worker serves: releasing the eleventh meets ci's cap.
    const capped = (
      await coordinator.http
        .post('/runs')
        .set(ci)
        .send({
          name: 'capped',
          tasks: [
            { key: 'setup', type: 'synthetic', name: 'setup' },
            ...Array.from({ length: 12 }, (_, i) => ({
              key: `t${i}`,
              type: 'synthetic',
              name: `t${i}`,
              hardware_requirements: { capabilities: ['PARKED'] },
              depends_on: ['setup'],
            })),
          ],
        })
        .expect(201)
    ).body as { id: string };
    suite.worker({ pool: 'cpu', id: 'cap-worker' });
    // The setup passes; releasing its dependents meets ci's cap after ten: the run is stuck there.
    const stuck = await waitFor(
      async () => {
        const r = (await coordinator.http.get(`/runs/${capped.id}`).set(ops).expect(200)).body as { files: Array<{ key: string; state: string }> };
        const states = r.files.filter((f) => f.key !== 'setup').map((f) => f.state);
        return states.filter((st) => st === 'queued').length === 10 && states.filter((st) => st === 'blocked').length === 2 ? r : undefined;
      },
      { what: "ci's run to release ten tasks and meet its cap", timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(stuck.files.find((f) => f.key === 'setup')?.state).toBe('passed');
    // Runs of another client, one after another (its own cap is 10 too), each needing a reconciler pass to
    // release its second task and another to finalize. Active runs are visited in Redis's set order: some of
    // these come after ci's stuck run.
    for (let i = 0; i < 5; i++) {
      const body = {
        name: `other ${i}`,
        tasks: [
          { key: 'a', type: 'synthetic', name: 'a' },
          { key: 'b', type: 'synthetic', name: 'b', depends_on: ['a'] },
        ],
      };
      const created = await coordinator.http.post('/runs').set(other).send(body);
      expect([i, created.status, created.body.message]).toEqual([i, 201, undefined]);
      const { id } = created.body as { id: string };
      const run = await waitFor(
        async () => {
          const r = (await coordinator.http.get(`/runs/${id}`).set(ops).expect(200)).body as { state: string; finished_at: string | null };
          return r.finished_at ? r : undefined;
        },
        { what: `other's run ${i} to be released and finalized`, timeoutMs: 20_000, intervalMs: 100 },
      );
      expect(run.state).toBe('passed');
    }
    // ci's two tasks are still blocked, not lost: released when ci's queue has room.
    const after = (await coordinator.http.get(`/runs/${capped.id}`).set(ops).expect(200)).body as { files: Array<{ key: string; state: string }> };
    expect(after.files.filter((f) => f.state === 'blocked')).toHaveLength(2);
    await coordinator.http.delete(`/runs/${capped.id}`).set(ci).expect(200);
  });
});

describe('the rate limit', () => {
  // A suite of its own: the counters are per client and minute, under the suite's prefix.
  const suite = isolatedSuite('ratelimit', securedConfigFiles());

  it('rate limit: past RATE_LIMIT_PER_MINUTE a client gets 429 with Retry-After, across two coordinators sharing Redis; others are not affected', async () => {
    const env = { RATE_LIMIT_PER_MINUTE: '6' };
    const one = await suite.service('coordinator', env);
    const two = await suite.service('coordinator', env);
    for (const c of [one, two, one, two, one, two]) await c.http.get('/queues').set(viewer).expect(200);
    const refused = await two.http.get('/queues').set(viewer);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.body.errors[0]).toEqual({ field: 'client', reason: expect.stringMatching(/more than 6 requests this minute/) });
    await one.http.get('/queues').set(ops).expect(200);
    // Health stays open to monitoring, whatever the limits.
    await one.http.get('/health').expect(200);
  });
});

describe('where the apps listen', () => {
  const suite = isolatedSuite('bind', openConfigFiles());

  it('binds to 127.0.0.1 by default, says so, and is not reachable on the machine’s other addresses', async () => {
    const port = await freePort();
    const app = startApp('coordinator', [], {
      REDIS_URL: suite.redisUrl,
      FLEET_PREFIX: suite.prefix,
      CONFIG_DIR: suite.config.path,
      COORDINATOR_PORT: String(port),
    });
    suite.onCleanup(() => app.stop('SIGKILL'));
    await waitFor(() => app.output().includes('listening on'), { what: 'the coordinator to listen' });
    expect(app.output()).toContain(`listening on http://127.0.0.1:${port} (no tokens: open to anyone who can reach it`);
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    if (external) await expect(fetch(`http://${external.address}:${port}/health`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  });

  it('refuses to start bound beyond loopback without tokens (exit 78, naming why), unless FLEET_INSECURE=1', async () => {
    const env = { REDIS_URL: suite.redisUrl, FLEET_PREFIX: suite.prefix, CONFIG_DIR: suite.config.path, HOST: '0.0.0.0' };
    // The four start side by side (each start is seconds of CPU-bound module loading on a loaded machine).
    const port = await freePort();
    const insecure = startApp('coordinator', [], { ...env, COORDINATOR_PORT: String(port), FLEET_INSECURE: '1' });
    suite.onCleanup(() => insecure.stop('SIGKILL'));
    const refused = ['coordinator', 'resource-manager', 'trend-analyzer'].map((app) =>
      startApp(app, [], { ...env, COORDINATOR_PORT: '0', RESOURCE_MANAGER_PORT: '0', TREND_ANALYZER_PORT: '0' }),
    );
    for (const p of refused) {
      expect(await p.exited).toEqual({ code: 78, signal: null });
      expect(p.output()).toMatch(/binds to 0\.0\.0\.0, beyond this machine, but no client tokens are configured/);
    }
    await waitFor(() => insecure.output().includes(`listening on http://0.0.0.0:${port}`), {
      what: 'the insecure coordinator to listen on every address',
    });
  });

  it('answers cross-origin requests only for the origins in CORS_ORIGINS, and for none without it', async () => {
    const preflight = (http: Awaited<ReturnType<typeof suite.service>>['http'], origin: string) =>
      http.options('/queues').set('Origin', origin).set('Access-Control-Request-Method', 'GET');
    // The coordinator runs on Fastify and the resource manager on Express: both must behave alike.
    const [closed, coordinator, manager] = await Promise.all([
      suite.service('coordinator'),
      suite.service('coordinator', { CORS_ORIGINS: 'http://ci.example' }),
      suite.service('resource-manager', { CORS_ORIGINS: 'http://ci.example' }),
    ]);
    const none = await closed.http.get('/queues').set('Origin', 'http://ci.example');
    expect([none.status, none.headers['access-control-allow-origin']]).toEqual([200, undefined]);
    expect((await preflight(closed.http, 'http://ci.example')).headers['access-control-allow-origin']).toBeUndefined();
    for (const app of [coordinator, manager]) {
      expect((await preflight(app.http, 'http://ci.example')).headers['access-control-allow-origin']).toBe('http://ci.example');
      expect((await app.http.get('/health/live').set('Origin', 'http://ci.example')).headers['access-control-allow-origin']).toBe(
        'http://ci.example',
      );
      expect((await preflight(app.http, 'http://attacker.example')).headers['access-control-allow-origin']).toBeUndefined();
    }
  });

  it('answers 403 to a request for another host name while bound to loopback (DNS rebinding)', async () => {
    const coordinator = await suite.service('coordinator');
    const res = await coordinator.http.get('/queues').set('Host', 'attacker.example:80');
    expect([res.status, res.body.errors[0].field]).toEqual([403, 'Host']);
    await coordinator.http.get('/queues').expect(200);
  });
});
