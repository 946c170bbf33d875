import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isolatedSuite } from '@fleet/testing';
import { type Coordinator, suiteCoordinator } from './coordinator-harness.js';
import { seedConfigFiles } from './fixtures.js';

interface Case {
  kind: string;
  send: (c: Coordinator) => Promise<{ status: number; body: { errors: Array<{ field: string; reason: string }>; message: string } }>;
  status: number;
  field: string;
  reason: RegExp;
}

const task = (overrides: object) => ({ type: 'synthetic', name: 'ok', ...overrides });
const post = (path: string, body: object) => (c: Coordinator) => c.http.post(path).send(body);

const CASES: Case[] = [
  {
    kind: 'malformed JSON',
    send: (c) => c.http.post('/tasks').set('content-type', 'application/json').send('{"type": "test",'),
    status: 400,
    field: 'body',
    reason: /malformed JSON/,
  },
  {
    kind: 'a body that is not JSON',
    send: (c) => c.http.post('/tasks').set('content-type', 'text/plain').send('run my tests'),
    status: 415,
    field: 'Content-Type',
    reason: /"text\/plain" is not accepted: send application\/json/,
  },
  {
    kind: 'no body at all',
    send: (c) => c.http.post('/tasks'),
    status: 400,
    field: 'body',
    reason: /required.*application\/json/,
  },
  { kind: 'a JSON array for one task', send: post('/tasks', [task({})]), status: 400, field: 'body', reason: /JSON object/ },
  { kind: 'a missing name', send: post('/tasks', { type: 'synthetic' }), status: 400, field: 'name', reason: /required/ },
  { kind: 'a wrong-typed priority', send: post('/tasks', task({ priority: 'high' })), status: 400, field: 'priority', reason: /integer/ },
  {
    kind: 'an unknown type',
    send: post('/tasks', task({ type: 'deploy' })),
    status: 400,
    field: 'type',
    reason: /one of test, benchmark, synthetic/,
  },
  { kind: 'a negative priority', send: post('/tasks', task({ priority: -3 })), status: 400, field: 'priority', reason: /from 0 to 1000/ },
  { kind: 'a huge priority', send: post('/tasks', task({ priority: 10 ** 12 })), status: 400, field: 'priority', reason: /from 0 to 1000/ },
  { kind: 'a negative timeout', send: post('/tasks', task({ timeout_ms: -1 })), status: 400, field: 'timeout_ms', reason: /from 100 to/ },
  { kind: 'a huge timeout', send: post('/tasks', task({ timeout_ms: 10 ** 10 })), status: 400, field: 'timeout_ms', reason: /from 100 to/ },
  { kind: 'an unknown field', send: post('/tasks', task({ command: 'rm -rf /' })), status: 400, field: 'command', reason: /unknown field/ },
  {
    kind: 'a test file outside the runner directory',
    send: post('/tasks', { type: 'test', name: 'x', config: { test_file: '../../etc/passwd' } }),
    status: 400,
    field: 'config.test_file',
    reason: /relative path/,
  },
  {
    kind: 'an oversize body',
    send: post('/tasks/batch', { tasks: Array.from({ length: 400 }, (_, i) => task({ name: `${'n'.repeat(150)}${i}` })) }),
    status: 413,
    field: 'body',
    reason: /limit of 65536 bytes/,
  },
  {
    kind: 'unsatisfiable requirements',
    send: post('/tasks', task({ hardware_requirements: { gpu: 8 } })),
    status: 422,
    field: 'hardware_requirements',
    reason: /gpu 1 < 8/,
  },
  {
    kind: 'a capability no pool has',
    send: post('/tasks', task({ hardware_requirements: { capabilities: ['TPU'] } })),
    status: 422,
    field: 'hardware_requirements',
    reason: /lacks capability TPU/,
  },
  {
    kind: 'a test type no pool has a runner for',
    send: post('/tasks', { type: 'test', name: 'x', config: { test_file: 'spec.rb' } }),
    status: 422,
    field: 'hardware_requirements',
    reason: /no test runner for ".rb"/,
  },
  {
    kind: 'an unknown id',
    send: (c) => c.http.get('/tasks/cpu-worker.8d6f6a36-6f0e-4a43-9b0f-0d8f2f0f5d11'),
    status: 404,
    field: 'id',
    reason: /no task/,
  },
  { kind: 'an id that is no task id', send: (c) => c.http.get('/tasks/hello'), status: 404, field: 'id', reason: /no task/ },
  { kind: 'cancelling an unknown id', send: (c) => c.http.delete('/tasks/nope.nope'), status: 404, field: 'id', reason: /no task/ },
  {
    kind: 'a batch with one bad task',
    send: post('/tasks/batch', { tasks: [task({ name: 'a' }), task({ name: 'b', priority: 5000 }), task({ name: 'c' })] }),
    status: 400,
    field: 'tasks[1].priority',
    reason: /from 0 to 1000/,
  },
  {
    kind: 'a batch with one unsatisfiable task',
    send: post('/tasks/batch', { tasks: [task({ name: 'a' }), task({ name: 'b' }), task({ name: 'c', hardware_requirements: { memory_gb: 512 } })] }),
    status: 422,
    field: 'tasks[2].hardware_requirements',
    reason: /memory_gb/,
  },
  { kind: 'a batch without tasks', send: post('/tasks/batch', { jobs: [] }), status: 400, field: 'tasks', reason: /required/ },
  {
    kind: "a run's extra task keyed like one of its test files",
    send: post('/runs', {
      name: 'r',
      pool: 'cpu-worker',
      tests: ['passes.test.mjs'],
      tasks: [{ key: 'passes.test.mjs', type: 'synthetic', name: 'x' }],
    }),
    status: 422,
    field: 'tasks[0].key',
    reason: /"passes.test.mjs" is a test file of this run/,
  },
  ...['{.hidden,x}/*.mjs', '[.]hidden/*.mjs', 'a/{b,.git}/*'].map((pattern) => ({
    kind: `a test pattern that names hidden files through braces or a class (${pattern})`,
    send: post('/runs', { name: 'r', pool: 'cpu-worker', tests: [pattern] }),
    status: 400,
    field: 'tests[0]',
    reason: /no hidden segments/,
  })),
  {
    kind: 'a test pattern with too many wildcards',
    send: post('/runs', { name: 'r', pool: 'cpu-worker', tests: Array.from({ length: 50 }, () => `${'*?'.repeat(30)}x`) }),
    status: 400,
    field: 'tests[0]',
    reason: /at most 12 wildcards/,
  },
  {
    kind: 'a run of more than 100 globs',
    send: post('/runs', { name: 'r', pool: 'cpu-worker', tests: Array.from({ length: 101 }, (_, i) => `d${i}/*.mjs`) }),
    status: 400,
    field: 'tests',
    reason: /at most 100 globs and folders per run/,
  },
  {
    kind: 'a test folder that is a link out of the workdir',
    send: post('/runs', { name: 'r', pool: 'cpu-worker', tests: ['outside/'] }),
    status: 422,
    field: 'tests[0]',
    reason: /leads outside the workdir/,
  },
];

describe('bad input gets a 4xx naming the field and the reason, and queues nothing', () => {
  const suite = isolatedSuite('bad', seedConfigFiles());
  const coordinatorOf = suiteCoordinator(suite, { HTTP_BODY_LIMIT_BYTES: '65536' });
  const elsewhere = mkdtempSync(join(tmpdir(), 'fleet-outside-'));
  beforeAll(() => {
    writeFileSync(join(elsewhere, 'secret.test.mjs'), '');
    symlinkSync(elsewhere, join(suite.config.path, 'outside'));
  });
  afterAll(() => rmSync(elsewhere, { recursive: true, force: true }));

  it.each(CASES.map((c) => [c.kind, c] as const))('%s', async (_kind, c) => {
    const res = await c.send(coordinatorOf());
    expect(res.status).toBe(c.status);
    expect(res.body.errors).toEqual(expect.arrayContaining([{ field: c.field, reason: expect.stringMatching(c.reason) }]));
    expect(res.body.message).toContain(c.field);
  });

  it('queued nothing for any of them', async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(12);
    const pools = (await coordinatorOf().http.get('/queues').expect(200)).body.pools as Array<{ counts: Record<string, number> }>;
    for (const p of pools) expect(Object.values(p.counts).every((n) => n === 0)).toBe(true);
    // Only the queues' own metadata, the fleet's layout record and the client's rate-limit counter exist: no job,
    // no idempotency key, no cancellation record.
    const [, keys] = await suite.redis.scan('0', 'MATCH', suite.keys.everything[0], 'COUNT', 10_000);
    expect(keys.filter((k) => !k.endsWith(':meta') && k !== suite.keys.layout && !k.startsWith(`${suite.prefix}:rl:`))).toEqual([]);
  });
});
