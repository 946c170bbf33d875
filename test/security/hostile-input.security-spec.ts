import { bearer, isolatedSuite, type Service } from '@fleet/testing';
import { CLIENTS, securedConfigFiles } from './security-fixtures.js';

type App = 'coordinator' | 'resource-manager' | 'trend-analyzer';
interface Case {
  name: string;
  app: App;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  /** An object is sent as JSON; a string is sent as is, as application/json. */
  body?: unknown;
  status: number;
  /** The field the error must name (a prefix of it is enough for long paths). */
  field: string | RegExp;
}

const ok = { type: 'synthetic', name: 'fine' };
const post = (name: string, body: unknown, field: string | RegExp, status = 400): Case => ({
  name,
  app: 'coordinator',
  method: 'POST',
  path: '/tasks',
  body,
  status,
  field,
});
const withTask = (name: string, extra: object, field: string | RegExp, status = 400) => post(name, { ...ok, ...extra }, field, status);
const test = (file: unknown) => ({ type: 'test', name: 't', config: { test_file: file } });
const bench = (model: unknown) => ({ type: 'benchmark', name: 'b', config: { model } });
const nest = (depth: number): unknown => (depth === 0 ? 1 : { a: nest(depth - 1) });
const get = (app: App, path: string, field: string | RegExp, status = 400): Case => ({
  name: `GET ${path}`,
  app,
  method: 'GET',
  path,
  status,
  field,
});

/** Hostile requests: each must get a 4xx naming the field, queue nothing, and leave every app up. */
const CASES: Case[] = [
  // Malformed and oversize bodies.
  post('truncated JSON', '{"type": "synthetic"', 'body'),
  post('JSON with a trailing comma', '{"type": "synthetic",}', 'body'),
  post('not JSON at all', 'type=synthetic&name=x', 'body'),
  post('a JSON string', '"synthetic"', 'body'),
  post('a JSON array', '[1, 2, 3]', 'body'),
  post('null', 'null', 'body'),
  post('an oversize body', { ...ok, name: 'x'.repeat(1100 * 1024) }, 'body', 413),
  post('a body nested 100 deep', { ...ok, labels: nest(100) }, /^body\.labels(\.a)+$/),
  // Keys that reach into prototypes.
  post('__proto__ at the top', '{"__proto__": {"admin": true}, "type": "synthetic", "name": "x"}', 'body.__proto__'),
  post('constructor at the top', { ...ok, constructor: { prototype: { admin: true } } }, 'body.constructor'),
  post('__proto__ as a label', '{"type": "synthetic", "name": "x", "labels": {"__proto__": "x"}}', 'body.labels.__proto__'),
  post('prototype in a config', { ...ok, config: { prototype: 1 } }, 'body.config.prototype'),
  // Values that reach a command line: option-like, escaping the workdir, NUL, absolute.
  ...[
    '-rf',
    '--inspect=0.0.0.0:9229',
    '../x.mjs',
    'a/../../x.mjs',
    '/etc/passwd',
    'a\u0000.mjs',
    '.hidden.mjs',
    'a/.git/x.mjs',
    '~/x.mjs',
    'a b.mjs',
    'x.mjs\nrm',
  ].map((f) => post(`test_file ${JSON.stringify(f)}`, test(f), 'config.test_file')),
  ...['-x', '--exec=evil', '../../etc/passwd', '/abs/model', 'org/../../x', 'm\u0000', 'org/-rf', 'a b', '$(id)', 'x;id'].map((m) =>
    post(`model ${JSON.stringify(m)}`, bench(m), 'config.model'),
  ),
  // A wrong type for every field.
  ...[42, [], {}, true, null, ''].map((v) => withTask(`name ${JSON.stringify(v)}`, { name: v }, 'name')),
  ...[1, 'job', null].map((v) => post(`type ${JSON.stringify(v)}`, { ...ok, type: v }, 'type')),
  ...['5', 1.5, -1, 1001].map((v) => withTask(`priority ${JSON.stringify(v)}`, { priority: v }, 'priority')),
  ...['x', [1], 7].map((v) => withTask(`config ${JSON.stringify(v)}`, { config: v }, 'config')),
  withTask('config.duration_ms as a string', { config: { duration_ms: '10' } }, 'config.duration_ms'),
  withTask('config.mode unknown', { config: { mode: 'fork-bomb' } }, 'config.mode'),
  withTask('config.fail_probability above 1', { config: { fail_probability: 2 } }, 'config.fail_probability'),
  withTask('config.metrics not numbers', { config: { metrics: { x: 'y' } } }, 'config.metrics.x'),
  withTask('hardware_requirements a string', { hardware_requirements: 'big' }, 'hardware_requirements'),
  withTask('cpu "two"', { hardware_requirements: { cpu: 'two' } }, 'hardware_requirements.cpu'),
  withTask('gpu -1', { hardware_requirements: { gpu: -1 } }, 'hardware_requirements.gpu'),
  withTask('threads 1.5', { hardware_requirements: { threads: 1.5 } }, 'hardware_requirements.threads'),
  withTask('memory_gb a string', { hardware_requirements: { memory_gb: 'lots' } }, 'hardware_requirements.memory_gb'),
  withTask('capabilities a string', { hardware_requirements: { capabilities: 'GPU' } }, 'hardware_requirements.capabilities'),
  withTask('a capability that is a number', { hardware_requirements: { capabilities: [1] } }, 'hardware_requirements.capabilities[0]'),
  ...['1000', 50, 1e12].map((v) => withTask(`timeout_ms ${v}`, { timeout_ms: v }, 'timeout_ms')),
  ...[0, 21, '3'].map((v) => withTask(`max_attempts ${JSON.stringify(v)}`, { max_attempts: v }, 'max_attempts')),
  ...[-1, 'x'].map((v) => withTask(`retry_backoff_ms ${JSON.stringify(v)}`, { retry_backoff_ms: v }, 'retry_backoff_ms')),
  ...[1, '', 'k'.repeat(201)].map((v) => withTask(`idempotency_key ${String(v).slice(0, 12)}`, { idempotency_key: v }, 'idempotency_key')),
  withTask('labels a string', { labels: 'x' }, 'labels'),
  withTask('a label value that is a number', { labels: { team: 1 } }, 'labels.team'),
  withTask('40 labels', { labels: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`l${i}`, 'v'])) }, 'labels'),
  withTask('a label value of 300 characters', { labels: { team: 'v'.repeat(300) } }, 'labels.team'),
  withTask('a label name with a space', { labels: { 'bad name': 'v' } }, /^labels/),
  withTask('an unknown field', { shell: 'rm -rf /' }, 'shell'),
  // Batches.
  { name: 'batch: tasks not a list', app: 'coordinator', method: 'POST', path: '/tasks/batch', body: { tasks: 'all' }, status: 400, field: 'tasks' },
  { name: 'batch: no tasks', app: 'coordinator', method: 'POST', path: '/tasks/batch', body: { tasks: [] }, status: 400, field: 'tasks' },
  {
    name: 'batch: one bad task among good ones',
    app: 'coordinator',
    method: 'POST',
    path: '/tasks/batch',
    body: { tasks: [ok, ok, { ...ok, priority: -3 }] },
    status: 400,
    field: 'tasks[2].priority',
  },
  {
    name: 'batch: 10,001 tasks',
    app: 'coordinator',
    method: 'POST',
    path: '/tasks/batch',
    body: { tasks: Array.from({ length: 10_001 }, () => ({ type: 'synthetic', name: 'n' })) },
    status: 400,
    field: 'tasks',
  },
  {
    name: 'batch: an extra field',
    app: 'coordinator',
    method: 'POST',
    path: '/tasks/batch',
    body: { tasks: [ok], run: 'x' },
    status: 400,
    field: 'run',
  },
  // Ids and query parameters.
  get('coordinator', '/tasks/..%2F..%2Fetc%2Fpasswd', 'id', 404),
  get('coordinator', `/tasks/cpu.${'f'.repeat(300)}`, 'id', 404),
  get('coordinator', '/queues?verbose=1', 'verbose'),
  get('coordinator', '/workers?limit=5', 'limit'),
  {
    name: 'DELETE an unknown task',
    app: 'coordinator',
    method: 'DELETE',
    path: '/tasks/cpu.00000000-0000-0000-0000-000000000000',
    status: 404,
    field: 'id',
  },
  get('resource-manager', '/decisions?limit=-1', 'limit'),
  get('resource-manager', '/decisions?limit=0', 'limit'),
  get('resource-manager', '/decisions?limit=abc', 'limit'),
  get('resource-manager', '/decisions?limit=100000', 'limit'),
  get('resource-manager', '/decisions?limit=1&limit=2', 'limit'),
  get('resource-manager', '/decisions?pool=NOPE!', 'pool'),
  get('resource-manager', '/decisions?pool=nope', 'pool', 404),
  get('resource-manager', '/decisions?since=yesterday', 'since'),
  get('resource-manager', '/pools?all=1', 'all'),
  get('resource-manager', '/pools/nope', 'pool', 404),
  ...[-1, 'abc', 2.5].map((v): Case => ({
    name: `pin ${v}`,
    app: 'resource-manager',
    method: 'PUT',
    path: '/pools/cpu',
    body: { workers: v },
    status: 400,
    field: 'workers',
  })),
  {
    name: 'pin above max_workers',
    app: 'resource-manager',
    method: 'PUT',
    path: '/pools/cpu',
    body: { workers: 999 },
    status: 422,
    field: 'workers',
  },
  {
    name: 'pin with an extra field',
    app: 'resource-manager',
    method: 'PUT',
    path: '/pools/cpu',
    body: { workers: 1, force: true },
    status: 400,
    field: 'force',
  },
  { name: 'pin as malformed JSON', app: 'resource-manager', method: 'PUT', path: '/pools/cpu', body: '{"workers":', status: 400, field: 'body' },
  {
    name: 'pin with __proto__',
    app: 'resource-manager',
    method: 'PUT',
    path: '/pools/cpu',
    body: '{"workers": 1, "__proto__": {"x": 1}}',
    status: 400,
    field: 'body.__proto__',
  },
  {
    name: 'pin nested 100 deep',
    app: 'resource-manager',
    method: 'PUT',
    path: '/pools/cpu',
    body: { workers: nest(100) },
    status: 400,
    field: /^body\.workers/,
  },
  {
    name: 'pin over the 64 KiB limit',
    app: 'resource-manager',
    method: 'PUT',
    path: '/pools/cpu',
    body: { workers: 1, pad: 'x'.repeat(70_000) },
    status: 413,
    field: 'body',
  },
  {
    name: 'a body over 64 KiB to a route that takes small ones',
    app: 'coordinator',
    method: 'PUT',
    path: '/quarantine',
    body: { test: 'a.mjs', reason: 'x'.repeat(100_000) },
    status: 413,
    field: 'body',
  },
  { name: 'pin of an unknown pool', app: 'resource-manager', method: 'PUT', path: '/pools/nope', body: { workers: 1 }, status: 404, field: 'pool' },
  ...[
    '/alerts?limit=-1',
    '/alerts?limit=abc',
    '/alerts?limit=1e9',
    '/anomalies?limit=0',
    '/anomalies?limit=%27%3B',
    '/metrics/summary?x=1',
    '/trends?metric=a',
    '/report?format=pdf',
    '/report.html?x=1',
  ].map((p) => get('trend-analyzer', p, /^(limit|x|metric|format)$/)),
];

describe(`hostile input: ${CASES.length} requests across the three apps`, () => {
  const suite = isolatedSuite('hostile', securedConfigFiles());
  const apps = {} as Record<App, Service>;
  const pids: number[] = [];

  beforeAll(async () => {
    // The coordinator with a small body limit, so an oversize body is cheap to send.
    apps.coordinator = await suite.service('coordinator', { HTTP_BODY_LIMIT_BYTES: String(1024 * 1024), RATE_LIMIT_PER_MINUTE: '100000' });
    apps['resource-manager'] = await suite.service('resource-manager', { RATE_LIMIT_PER_MINUTE: '100000' });
    apps['trend-analyzer'] = await suite.service('trend-analyzer', { RATE_LIMIT_PER_MINUTE: '100000' });
    pids.push(...Object.values(apps).map((a) => a.pid));
  });

  it('has at least 80 of them', () => expect(CASES.length).toBeGreaterThanOrEqual(80));

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const token = c.app === 'coordinator' && c.method === 'POST' ? CLIENTS.tokens.ci : CLIENTS.tokens.ops;
    const http = apps[c.app].http;
    let req =
      c.method === 'GET' ? http.get(c.path) : c.method === 'POST' ? http.post(c.path) : c.method === 'PUT' ? http.put(c.path) : http.delete(c.path);
    req = req.set(bearer(token));
    if (c.body !== undefined) req = req.set('content-type', 'application/json').send(typeof c.body === 'string' ? c.body : JSON.stringify(c.body));
    const res = await req;
    expect(res.status).toBe(c.status);
    const fields = (res.body.errors as Array<{ field: string; reason: string }>).map((e) => e.field);
    expect(fields.some((f) => (typeof c.field === 'string' ? f === c.field : c.field.test(f)))).toBe(true);
    expect(res.body.errors.every((e: { reason: string }) => e.reason.length > 0)).toBe(true);
  });

  // helmet's headers on every kind of answer (the coordinator runs on Fastify, the others on Express): a success,
  // a refusal before any handler (401), a handler's 400 and an unmatched route's 404.
  const BAD_QUERY: Record<App, string> = {
    coordinator: '/queues?verbose=1',
    'resource-manager': '/decisions?limit=abc',
    'trend-analyzer': '/alerts?limit=abc',
  };
  it.each(Object.keys(BAD_QUERY) as App[])('%s: security headers on a 200, a 401, a 400 and a 404, and no X-Powered-By', async (app) => {
    const http = apps[app].http;
    const answers = [
      await http.get('/health/live'),
      await http.get('/metrics'),
      await http.get(BAD_QUERY[app]).set(bearer(CLIENTS.tokens.ops)),
      await http.get('/no-such-route').set(bearer(CLIENTS.tokens.ops)),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 401, 400, 404]);
    for (const a of answers) {
      expect(a.headers['content-security-policy']).toContain("default-src 'self'");
      expect(a.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
      expect(a.headers['x-content-type-options']).toBe('nosniff');
      expect(a.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(a.headers['x-powered-by']).toBeUndefined();
    }
  });

  it.each([
    ['POST', '/tasks/batch'],
    ['POST', '/nowhere'],
    ['PUT', '/pools/cpu'],
  ])('reads no body before its sender is authenticated: an anonymous 8 MiB %s %s gets 401, unparsed', async (method, path) => {
    const app = path === '/pools/cpu' ? apps['resource-manager'] : apps.coordinator;
    const body = JSON.stringify({ tasks: Array.from({ length: 200_000 }, (_, i) => ({ type: 'synthetic', name: `n${i}` })) }).slice(0, 8 << 20);
    const res = await (method === 'POST' ? app.http.post(path) : app.http.put(path)).set('content-type', 'application/json').send(body);
    expect(res.status).toBe(401);
    expect(res.body.errors).toEqual([{ field: 'Authorization', reason: expect.stringMatching(/the body was not read/) }]);
  });

  it('queued nothing, and no app restarted', async () => {
    expect(await suite.queue('cpu').queue.getJobCounts('prioritized', 'waiting', 'delayed')).toEqual({ prioritized: 0, waiting: 0, delayed: 0 });
    expect(await suite.redis.keys(`${suite.prefix}:idem:*`)).toEqual([]);
    for (const app of Object.values(apps)) {
      expect(app.child.exitCode).toBeNull();
      await app.http.get('/health').expect(200);
    }
    expect(Object.values(apps).map((a) => a.pid)).toEqual(pids);
  });
});
