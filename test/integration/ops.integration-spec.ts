import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { cpuTemplate, freePort, isolatedSuite, moduleLoadsProbe, packagesLoaded, type Service, startHttpApps, waitFor } from '@fleet/testing';

/** Debian's prometheus package brings promtool (`apt-get install -y prometheus`; .ci/run installs it). */
const PROMTOOL = process.env.PROMTOOL_PATH ?? '/usr/bin/promtool';

type App = 'coordinator' | 'resource-manager' | 'trend-analyzer' | 'dashboard' | 'worker';

/** Samples of one metric in the text format, as label sets and values. */
function samples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .map((l) => {
      const labels = Object.fromEntries([...(/\{(.*)\}/.exec(l)?.[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      return { labels, value: Number(l.slice(l.lastIndexOf(' ') + 1)) };
    });
}
const sum = (text: string, name: string, where: Record<string, string> = {}) =>
  samples(text, name)
    .filter((s) => Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);

describe('the operators’ surface: metrics, OpenAPI, JSON logs, liveness and readiness, the autoscaling backlog', () => {
  const suite = isolatedSuite(
    'ops',
    {
      // `idle` is MANUAL: nothing consumes it unless someone starts a worker by hand.
      'worker_templates.json': {
        cpu: cpuTemplate({ concurrency: 4 }),
        idle: cpuTemplate({ provider: 'MANUAL', concurrency: 1, capabilities: ['IDLE'] }),
      },
      'resource_manager_config.json': {
        min_workers: 2,
        max_workers: 2,
        polling_interval: 0.3,
        scaling_strategy: 'STATIC',
        lease_ttl: 2,
        stop_grace_period: 5,
      },
      'performance_analyzer_config.json': { polling_interval: 0.3, metrics_grouping: ['pool'] },
    },
    { privateRedis: {} },
  );
  const apps = {} as Record<App, Service>;
  let workerPort = 0;
  // Every app lists what it loads from node_modules here (see moduleLoadsProbe).
  const loads = mkdtempSync(join(tmpdir(), 'fleet-loads-'));

  beforeAll(async () => {
    for (const [tool, path] of [['promtool', PROMTOOL]] as const) {
      if (!existsSync(path)) throw new Error(`no ${tool} at ${path}: install Debian's prometheus package (apt-get install -y prometheus)`);
    }
    suite.onCleanup(() => rmSync(loads, { recursive: true, force: true }));
    Object.assign(apps, await startHttpApps(suite, moduleLoadsProbe(loads)));
    // A worker run on its own (one per pod, say) serves health and metrics when WORKER_PORT is set; it logs at debug.
    workerPort = await freePort();
    const w = suite.worker({ pool: 'cpu', id: 'solo', env: { WORKER_PORT: String(workerPort), LOG_LEVEL: 'debug', ...moduleLoadsProbe(loads) } });
    const url = `http://127.0.0.1:${workerPort}`;
    await waitFor(async () => (await fetch(`${url}/health/ready`).catch(() => undefined))?.ok, { what: 'the worker to be ready', timeoutMs: 30_000 });
    apps.worker = { ...w, url, http: (await import('supertest')).default(url) };
  });

  it('each app runs from its bundle: from node_modules it loads only what the bundle leaves out on purpose', () => {
    // reflect-metadata (external: Nest's decorators need it before any chunk runs); swagger-ui-dist, looked up for
    // the path of the files /docs serves; picomatch, which fdir (tinyglobby's) requires if it is there. Anything
    // else is a second copy of what the bundle holds, read and compiled at every start: terminus's
    // @HealthCheck() once required @nestjs/swagger that way, and with it about 1,000 files of Nest and rxjs.
    const expected = ['picomatch', 'reflect-metadata', 'swagger-ui-dist'];
    for (const app of Object.keys(apps) as App[]) {
      const loaded = packagesLoaded(loads, apps[app].pid);
      expect({ app, loaded }).toEqual({ app, loaded: expect.arrayContaining(['reflect-metadata']) });
      expect({ app, unexpected: loaded.filter((p) => !expected.includes(p)) }).toEqual({ app, unexpected: [] });
    }
  });

  const TASKS = 24;
  it('each app’s /metrics passes promtool, and counts what happened: tasks queued, attempts and their durations, workers, decisions, events', async () => {
    const submitted = await apps.coordinator.http
      .post('/tasks/batch')
      .send({ tasks: Array.from({ length: TASKS }, (_, i) => ({ type: 'synthetic', name: `m${i}`, config: { duration_ms: 20 } })) })
      .expect(201);
    expect(submitted.body.ids).toHaveLength(TASKS);
    await waitFor(async () => (await apps['trend-analyzer'].http.get('/metrics/summary').expect(200)).body.events.processed === TASKS, {
      what: 'every attempt counted by the analyzer',
      timeoutMs: 30_000,
    });
    // The manager's two workers and the solo one, all registered in the pool, as the manager sees it.
    await waitFor(async () => (await apps['resource-manager'].http.get('/pools/cpu').expect(200)).body.running === 3, { what: 'three workers seen' });
    const text: Partial<Record<App, string>> = {};
    for (const app of Object.keys(apps) as App[]) {
      const res = await apps[app].http.get('/metrics').expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: res.text, encoding: 'utf8' });
      expect([app, check.status, check.stdout + check.stderr]).toEqual([app, 0, '']);
      // Low cardinality: no task ids in labels, ever.
      expect(res.text).not.toMatch(/task_id="/);
      expect(res.text).toMatch(/^process_cpu_seconds_total /m);
      text[app] = res.text;
    }
    const c = text.coordinator as string;
    expect(sum(c, 'fleet_tasks_queued_total', { pool: 'cpu', type: 'synthetic' })).toBe(TASKS);
    expect(samples(c, 'fleet_queue_tasks').map((s) => `${s.labels.pool}:${s.labels.state}`)).toEqual(
      expect.arrayContaining(['cpu:waiting', 'cpu:completed', 'idle:waiting']),
    );
    expect(sum(c, 'http_request_duration_seconds_count', { route: '/tasks/batch', method: 'POST', status_code: '201' })).toBe(1);
    const a = text['trend-analyzer'] as string;
    expect(sum(a, 'fleet_task_attempts_total', { pool: 'cpu', type: 'synthetic', outcome: 'completed' })).toBe(TASKS);
    expect(sum(a, 'fleet_task_duration_seconds_count', { pool: 'cpu', outcome: 'completed' })).toBe(TASKS);
    expect(sum(a, 'fleet_timing_events_total', { result: 'processed' })).toBe(TASKS);
    expect(
      samples(a, 'fleet_alerts_active')
        .map((s) => s.labels.severity)
        .sort(),
    ).toEqual(['critical', 'warning']);
    const r = text['resource-manager'] as string;
    expect(sum(r, 'fleet_workers', { pool: 'cpu', state: 'running' })).toBe(3);
    expect(sum(r, 'fleet_pool_desired_workers', { pool: 'cpu' })).toBe(2);
    expect(sum(r, 'fleet_scaling_decisions_total', { pool: 'cpu', direction: 'up' })).toBeGreaterThanOrEqual(1);
    expect(sum(r, 'fleet_resource_manager_lease_held')).toBe(1);
    // The solo worker did its share; together with the manager's two workers, every attempt once.
    expect(sum(text.worker as string, 'fleet_worker_attempts_total', { pool: 'cpu', outcome: 'completed' })).toBeLessThanOrEqual(TASKS);
  });

  it('each app’s OpenAPI document is valid OpenAPI and holds every route the app serves', async () => {
    for (const app of Object.keys(apps) as App[]) {
      const doc = (await apps[app].http.get('/openapi.json').expect(200)).body as { openapi: string; paths: Record<string, Record<string, unknown>> };
      const validator = new Validator();
      const result = await validator.validate(doc);
      expect([app, result.valid, result.errors]).toEqual([app, true, undefined]);
      const served = [...apps[app].output().matchAll(/Mapped \{([^,]+), (\w+)\} route/g)].map(
        (m) => `${m[2].toLowerCase()} ${m[1].replace(/:(\w+)/g, '{$1}')}`,
      );
      const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`));
      expect(served.length).toBeGreaterThan(2);
      expect([app, served.filter((s) => !documented.includes(s))]).toEqual([app, []]);
    }
    // Bodies and query parameters come from the zod schemas that validate them; refusals are documented.
    const coordinator = (await apps.coordinator.http.get('/openapi.json')).body as {
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: { content: Record<string, { schema: { oneOf?: unknown[] } }> };
            responses: Record<string, unknown>;
            parameters?: Array<{ name: string }>;
          }
        >
      >;
    };
    const submit = coordinator.paths['/tasks']?.post;
    expect(submit?.requestBody?.content['application/json']?.schema.oneOf).toHaveLength(3);
    expect(Object.keys(submit?.responses ?? {})).toEqual(expect.arrayContaining(['400', '401', '403', '429', '503']));
    expect(coordinator.paths['/tasks']?.get?.parameters?.map((p) => p.name).sort()).toEqual(['limit', 'pool', 'state']);
  });

  it('logs are JSON lines; every line about a task carries task_id, pool and worker_id', () => {
    const lines = apps.worker
      .output()
      .split('\n')
      .filter((l) => l.trim() !== '');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.every((l) => typeof l.time === 'string' && typeof l.level === 'string' && typeof l.msg === 'string')).toBe(true);
    const about = parsed.filter((l) => l.task_id !== undefined);
    expect(about.length).toBeGreaterThan(0);
    for (const l of about) expect(l).toMatchObject({ pool: 'cpu', worker_id: 'solo', task_id: expect.stringMatching(/^cpu\./) });
    expect(about.some((l) => l.msg === 'task completed')).toBe(true);
    // Every line of the worker says which worker wrote it, not only the task lines.
    expect(parsed.every((l) => l.worker_id === 'solo' && l.pool === 'cpu')).toBe(true);
  });

  it('the autoscaling backlog counts prioritized tasks and due retries, which a wait-list trigger misses', async () => {
    const idle = suite.queue('idle').queue;
    await apps.coordinator.http
      .post('/tasks/batch')
      .send({
        tasks: [1, 2, 3].map((i) => ({ type: 'synthetic', name: `p${i}`, priority: 10 * i, hardware_requirements: { capabilities: ['IDLE'] } })),
      })
      .expect(201);
    await idle.add('synthetic', { type: 'synthetic', name: 'due', submitted_by: 'anonymous' }, { delay: 1 });
    await idle.add('synthetic', { type: 'synthetic', name: 'later', submitted_by: 'anonymous' }, { delay: 3_600_000 });
    await waitFor(async () => (await idle.getDelayedCount()) === 2 && Date.now() > 0, { what: 'two delayed jobs' });
    const s = await waitFor(
      async () => {
        const body = (await apps.coordinator.http.get('/scaling/idle').expect(200)).body as Record<string, number>;
        return body.delayed_due === 1 ? body : undefined;
      },
      { what: 'the short delay to fall due' },
    );
    expect(s).toMatchObject({ pool: 'idle', prioritized: 3, delayed_due: 1, delayed_later: 1, backlog: 4, in_flight: 4 });
    // What KEDA's redis list trigger on the wait list would have seen:
    expect(await idle.getWaitingCount()).toBe(0);
    await apps.coordinator.http.get('/scaling/nope').expect(404);
  });

  it('liveness stays up through a Redis outage while readiness says what is missing, and recovers', async () => {
    await suite.server.kill();
    for (const app of ['coordinator', 'resource-manager', 'trend-analyzer', 'worker'] as const) {
      await apps[app].http.get('/health/live').expect(200);
      const ready = await waitFor(
        async () => {
          const res = await apps[app].http.get('/health/ready');
          return res.status === 503 ? res : undefined;
        },
        { what: `${app} to say it is not ready`, timeoutMs: 15_000 },
      );
      expect(ready.body).toMatchObject({
        status: 'error',
        error: { redis: { status: 'down' } },
        errors: expect.arrayContaining([expect.objectContaining({ field: 'redis' })]),
      });
    }
    await suite.server.start();
    for (const app of ['coordinator', 'resource-manager', 'trend-analyzer', 'worker', 'dashboard'] as const) {
      await waitFor(async () => (await apps[app].http.get('/health/ready')).status === 200, { what: `${app} ready again`, timeoutMs: 30_000 });
    }
  });
});
