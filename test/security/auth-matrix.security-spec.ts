import type { Role } from '@fleet/config';
import { bearer, cpuTemplate, isolatedSuite, type Service, startHttpApps } from '@fleet/testing';
import { CLIENTS, securedConfigFiles } from './security-fixtures.js';

type App = 'coordinator' | 'resource-manager' | 'trend-analyzer' | 'dashboard';
interface Route {
  app: App;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  /** Roles that may call it; 'public' needs no token. */
  roles: readonly Role[] | 'public';
  /** The body, or a function giving it once `beforeAll` has made what it names (a build's lease). */
  body?: object | (() => object);
  /** Query string the call needs (not part of the route's path). */
  query?: string;
}

const READ: Role[] = ['read', 'operate'];
// It routes to a MANUAL pool that nobody scales or serves, so the task and the run stay open for the whole
// matrix: a DELETE must find them unfinished however long the matrix takes to get there.
const task = { type: 'synthetic', name: 'matrix', hardware_requirements: { gpu: true } };

/** Liveness and readiness are open (probes carry no token); metrics are a read. Every app has them. */
const opsRoutes = (app: App): Route[] => [
  { app, method: 'GET', path: '/health/live', roles: 'public' },
  { app, method: 'GET', path: '/health/ready', roles: 'public' },
  { app, method: 'GET', path: '/metrics', roles: READ },
];

/** Every route the apps serve, with who may call it. The test fails if an app serves one not listed here. */
const ROUTES: Route[] = [
  { app: 'coordinator', method: 'GET', path: '/tasks', roles: ['submit', 'read', 'operate'] },
  { app: 'coordinator', method: 'GET', path: '/scaling/:pool', roles: READ },
  { app: 'coordinator', method: 'POST', path: '/tasks', roles: ['submit'], body: task },
  { app: 'coordinator', method: 'POST', path: '/tasks/batch', roles: ['submit'], body: { tasks: [task] } },
  { app: 'coordinator', method: 'GET', path: '/tasks/:id', roles: ['submit', 'read', 'operate'] },
  { app: 'coordinator', method: 'DELETE', path: '/tasks/:id', roles: ['submit', 'operate'] },
  { app: 'coordinator', method: 'GET', path: '/queues', roles: READ },
  { app: 'coordinator', method: 'GET', path: '/workers', roles: READ },
  { app: 'coordinator', method: 'POST', path: '/runs', roles: ['submit'], body: { name: 'm', tasks: [{ key: 'k', ...task }] } },
  { app: 'coordinator', method: 'GET', path: '/runs', roles: ['submit', 'read', 'operate'] },
  { app: 'coordinator', method: 'GET', path: '/runs/:id', roles: ['submit', 'read', 'operate'] },
  { app: 'coordinator', method: 'GET', path: '/runs/:id/junit.xml', roles: ['submit', 'read', 'operate'] },
  { app: 'coordinator', method: 'DELETE', path: '/runs/:id', roles: ['submit', 'operate'] },
  { app: 'coordinator', method: 'GET', path: '/flaky', roles: ['submit', 'read', 'operate'] },
  { app: 'coordinator', method: 'GET', path: '/quarantine', roles: ['submit', 'read', 'operate'] },
  { app: 'coordinator', method: 'PUT', path: '/quarantine', roles: ['operate'], body: { test: 'a.mjs', reason: 'matrix' } },
  { app: 'coordinator', method: 'DELETE', path: '/quarantine', roles: ['operate'], query: '?test=a.mjs' },
  {
    app: 'coordinator',
    method: 'POST',
    path: '/builds/:build/nodes',
    roles: ['submit'],
    body: { node: 'n', node_index: 0, node_total: 1, slots: 1, tests: ['a.mjs'] },
  },
  { app: 'coordinator', method: 'POST', path: '/builds/:build/leases', roles: ['submit'], body: { node: 'n', want: 0 } },
  {
    app: 'coordinator',
    method: 'POST',
    path: '/builds/:build/tasks/:task/renew',
    roles: ['submit'],
    body: () => ({ node: 'n', token: lease.token }),
  },
  {
    app: 'coordinator',
    method: 'POST',
    path: '/builds/:build/tasks/:task/outcome',
    roles: ['submit'],
    body: () => ({ node: 'n', token: lease.token, status: 'passed', duration_ms: 1 }),
  },
  // A build is its client's (the id is the client's CI build id); readers find its run by its `build` label.
  { app: 'coordinator', method: 'GET', path: '/builds/:build', roles: ['submit'] },
  { app: 'coordinator', method: 'GET', path: '/builds/:build/junit.xml', roles: ['submit'] },
  { app: 'coordinator', method: 'GET', path: '/health', roles: 'public' },
  { app: 'resource-manager', method: 'GET', path: '/pools', roles: READ },
  { app: 'resource-manager', method: 'GET', path: '/pools/:pool', roles: READ },
  { app: 'resource-manager', method: 'PUT', path: '/pools/:pool', roles: ['operate'], body: { workers: 0 } },
  { app: 'resource-manager', method: 'DELETE', path: '/pools/:pool/pin', roles: ['operate'] },
  { app: 'resource-manager', method: 'GET', path: '/decisions', roles: READ },
  { app: 'resource-manager', method: 'GET', path: '/hosts', roles: READ },
  { app: 'resource-manager', method: 'GET', path: '/health', roles: 'public' },
  { app: 'trend-analyzer', method: 'GET', path: '/alerts', roles: READ },
  { app: 'trend-analyzer', method: 'GET', path: '/metrics/summary', roles: READ },
  { app: 'trend-analyzer', method: 'GET', path: '/anomalies', roles: READ },
  { app: 'trend-analyzer', method: 'GET', path: '/trends', roles: READ },
  { app: 'trend-analyzer', method: 'GET', path: '/report', roles: READ },
  { app: 'trend-analyzer', method: 'GET', path: '/report.html', roles: READ },
  { app: 'trend-analyzer', method: 'GET', path: '/health', roles: 'public' },
  ...opsRoutes('coordinator'),
  ...opsRoutes('resource-manager'),
  ...opsRoutes('trend-analyzer'),
  ...opsRoutes('dashboard'),
];

/** The lease the submitting client holds on the matrix build's one file (taken in beforeAll). */
const lease = { task_id: '', token: '' };

const CLIENT_OF: Record<Role, string> = { submit: 'ci', operate: 'ops', read: 'viewer' };

describe('who may call what: every route of every app × no token, a bad token, the wrong role, the right role', () => {
  const suite = isolatedSuite(
    'authz',
    securedConfigFiles({
      'worker_templates.json': { cpu: cpuTemplate(), gpu: { provider: 'MANUAL', resources: { cpu: 1, gpu: 1 }, capabilities: ['GPU'] } },
    }),
  );
  const apps = {} as Record<App, Service>;
  let taskId = '';
  let runId = '';

  beforeAll(async () => {
    Object.assign(apps, await startHttpApps(suite));
    taskId = (await apps.coordinator.http.post('/tasks').set(bearer(CLIENTS.tokens.ci)).send(task).expect(201)).body.id;
    runId = (
      await apps.coordinator.http
        .post('/runs')
        .set(bearer(CLIENTS.tokens.ci))
        .send({ name: 'r', tasks: [{ key: 'k', ...task }] })
        .expect(201)
    ).body.id;
    // PUT /quarantine comes before DELETE /quarantine in the matrix: the operator's release finds the test quarantined.
    // A build with one file, leased by the submitting client: renew comes before outcome in the matrix.
    const ci = bearer(CLIENTS.tokens.ci);
    await apps.coordinator.http
      .post('/builds/matrix/nodes')
      .set(ci)
      .send({ node: 'n', node_index: 0, node_total: 1, slots: 1, tests: ['a.mjs'] })
      .expect(200);
    Object.assign(lease, (await apps.coordinator.http.post('/builds/matrix/leases').set(ci).send({ node: 'n', want: 1 }).expect(200)).body.leases[0]);
  });

  it('lists every route the apps serve (so none is left out of the matrix)', () => {
    for (const app of Object.keys(apps) as App[]) {
      const served = [...apps[app].output().matchAll(/Mapped \{([^,]+), (\w+)\} route/g)].map((m) => `${m[2]} ${m[1]}`).sort();
      const listed = ROUTES.filter((r) => r.app === app)
        .map((r) => `${r.method} ${r.path}`)
        .sort();
      expect(served).toEqual(listed);
    }
  });

  const send = (r: Route, headers: Record<string, string>) => {
    const path =
      r.path
        .replace(':id', r.path.startsWith('/runs') ? runId : taskId)
        .replace(':pool', 'cpu')
        .replace(':build', 'matrix')
        .replace(':task', lease.task_id) + (r.query ?? '');
    const http = apps[r.app].http;
    const req = r.method === 'GET' ? http.get(path) : r.method === 'POST' ? http.post(path) : r.method === 'PUT' ? http.put(path) : http.delete(path);
    const body = typeof r.body === 'function' ? r.body() : r.body;
    return (body ? req.send(body) : req).set(headers);
  };

  it.each(ROUTES.map((r) => [`${r.app} ${r.method} ${r.path}`, r] as const))('%s', async (_name, r) => {
    if (r.roles === 'public') {
      expect((await send(r, {})).status).toBe(200);
      return;
    }
    const none = await send(r, {});
    expect([none.status, none.body.errors?.[0]?.field]).toEqual([401, 'Authorization']);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await send(r, bearer('fleet_not-a-token'))).status).toBe(401);
    expect((await send(r, { authorization: 'Basic dXNlcjpwdw==' })).status).toBe(401);
    const wrong = (['submit', 'operate', 'read'] as Role[]).filter((role) => !r.roles.includes(role));
    for (const role of wrong) {
      const res = await send(r, bearer(CLIENTS.tokens[CLIENT_OF[role]]));
      expect([role, res.status, res.body.errors?.[0]?.reason]).toEqual([role, 403, expect.stringMatching(/lacks the role/)]);
    }
    for (const role of r.roles) {
      const res = await send(r, bearer(CLIENTS.tokens[CLIENT_OF[role]]));
      expect([role, res.status]).toEqual([role, expect.any(Number)]);
      expect(res.status).toBeLessThan(400);
    }
  });

  it('the queue board (mounted outside Nest) wants the operate role, as a bearer token or as the password of a browser’s Basic prompt', async () => {
    const board = apps.coordinator.http;
    const none = await board.get('/board/api/queues');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic/);
    expect((await board.get('/board/api/queues').set(bearer('fleet_not-a-token'))).status).toBe(401);
    expect((await board.get('/board/api/queues').set(bearer(CLIENTS.tokens.viewer))).status).toBe(403);
    expect((await board.get('/board/api/queues').set(bearer(CLIENTS.tokens.ci))).status).toBe(403);
    expect((await board.get('/board/api/queues').set(bearer(CLIENTS.tokens.ops))).status).toBe(200);
    const basic = { authorization: `Basic ${Buffer.from(`ops:${CLIENTS.tokens.ops}`).toString('base64')}` };
    expect((await board.get('/board/').set(basic)).status).toBe(200);
    // Read-only: its write calls are refused even to an operator.
    expect((await board.put('/board/api/queues/cpu/pause').set(bearer(CLIENTS.tokens.ops))).status).toBe(405);
  });

  it('the dashboard forwards the browser’s token: the apps behind it decide', async () => {
    const page = apps.dashboard.http;
    expect((await page.get('/')).status).toBe(200);
    const refused = await page.get('/api/coordinator/queues');
    expect([refused.status, refused.body.errors?.[0]?.field]).toEqual([401, 'Authorization']);
    expect((await page.get('/api/coordinator/queues').set(bearer(CLIENTS.tokens.viewer))).status).toBe(200);
    expect((await page.put('/api/resource-manager/pools/cpu').set(bearer(CLIENTS.tokens.viewer)).send({ workers: 1 })).status).toBe(403);
    const pinned = await page.put('/api/resource-manager/pools/cpu').set(bearer(CLIENTS.tokens.ops)).send({ workers: 0 });
    expect([pinned.status, pinned.body.pinned_workers]).toEqual([200, 0]);
  });

  it('the OpenAPI documents are open, like the API docs page', async () => {
    for (const app of Object.keys(apps) as App[]) {
      expect((await apps[app].http.get('/openapi.json')).status).toBe(200);
      expect((await apps[app].http.get('/docs/')).status).toBe(200);
    }
  });
});
