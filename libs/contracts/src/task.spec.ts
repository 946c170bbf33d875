import { parseTask, parseTaskList, type Task } from './task.js';

const ok = (input: unknown): Task => {
  const r = parseTask(input);
  if (!r.ok) throw new Error(`expected valid, got ${JSON.stringify(r.errors)}`);
  return r.value;
};
const errorsOf = (input: unknown) => {
  const r = parseTask(input);
  if (r.ok) throw new Error('expected a refusal');
  return r.errors;
};

describe('parseTask', () => {
  it('accepts the seed test task as is and lifts config.hardware_requirements to the top', () => {
    const t = ok({
      type: 'test',
      name: 'CPU Backend Test',
      priority: 5,
      config: { test_file: 'test_cpu_backend.py', hardware_requirements: { cpu: true, threads: 2 } },
    });
    expect(t).toMatchObject({
      type: 'test',
      priority: 5,
      config: { test_file: 'test_cpu_backend.py' },
      hardware_requirements: { cpu: true, threads: 2 },
    });
    expect(t.config).not.toHaveProperty('hardware_requirements');
  });

  it('accepts the seed benchmark task and labels it with its model', () => {
    const t = ok({
      type: 'benchmark',
      name: 'Small BERT Benchmark',
      priority: 10,
      config: { model: 'prajjwal1/bert-tiny', batch_sizes: [1, 2], precision: 'fp32', iterations: 3, hardware_requirements: { cpu: true } },
    });
    expect(t.labels).toEqual({ model_name: 'prajjwal1/bert-tiny' });
  });

  it('fills defaults', () => {
    expect(ok({ type: 'synthetic', name: 's' })).toEqual({
      type: 'synthetic',
      name: 's',
      priority: 0,
      config: { duration_ms: 0, mode: 'sleep', fail_probability: 0, fail_first_attempts: 0, metrics: {} },
      hardware_requirements: {},
      timeout_ms: 600_000,
      max_attempts: 1,
      retry_backoff_ms: 1000,
      labels: {},
    });
  });

  it('keeps names and labels with whole surrogate pairs (an emoji)', () => {
    expect(ok({ type: 'synthetic', name: 'deploy \u{1F680}', labels: { branch: 'x-\u{1F680}' } })).toMatchObject({
      name: 'deploy \u{1F680}',
      labels: { branch: 'x-\u{1F680}' },
    });
  });

  it('is idempotent: a normalized task parses to itself (the worker re-checks payloads)', () => {
    const t = ok({ type: 'benchmark', name: 'b', config: { model: 'm', hardware_requirements: { cpu: 2 } }, labels: { team: 'x' } });
    expect(ok(JSON.parse(JSON.stringify(t)))).toEqual(t);
  });

  it.each([
    ['a string body', 'x', 'body', /JSON object/],
    ['a missing type', { name: 'x' }, 'type', /one of test, benchmark, synthetic/],
    ['an unknown type', { type: 'deploy', name: 'x' }, 'type', /one of test, benchmark, synthetic/],
    ['a missing name', { type: 'synthetic' }, 'name', /required/],
    ['a wrong-typed name', { type: 'synthetic', name: 5 }, 'name', /string/],
    ['an empty name', { type: 'synthetic', name: '  ' }, 'name', /empty/],
    ['a negative priority', { type: 'synthetic', name: 'x', priority: -1 }, 'priority', /from 0 to 1000/],
    ['a huge priority', { type: 'synthetic', name: 'x', priority: 1e9 }, 'priority', /from 0 to 1000/],
    ['a fractional priority', { type: 'synthetic', name: 'x', priority: 1.5 }, 'priority', /integer/],
    ['a negative timeout', { type: 'synthetic', name: 'x', timeout_ms: -5 }, 'timeout_ms', /from 100 to 86400000/],
    ['a huge timeout', { type: 'synthetic', name: 'x', timeout_ms: 1e12 }, 'timeout_ms', /from 100 to 86400000/],
    ['zero attempts', { type: 'synthetic', name: 'x', max_attempts: 0 }, 'max_attempts', /from 1 to 20/],
    ['an unknown field', { type: 'synthetic', name: 'x', shell: 'rm -rf /' }, 'shell', /unknown field/],
    ['an unknown config field', { type: 'synthetic', name: 'x', config: { command: 'ls' } }, 'config.command', /unknown field/],
    ['a test without test_file', { type: 'test', name: 'x', config: {} }, 'config.test_file', /required/],
    ['an absolute test_file', { type: 'test', name: 'x', config: { test_file: '/etc/passwd' } }, 'config.test_file', /relative path/],
    ['a test_file climbing out', { type: 'test', name: 'x', config: { test_file: 'a/../../b.mjs' } }, 'config.test_file', /relative path/],
    ['a model that looks like a flag', { type: 'benchmark', name: 'x', config: { model: '--exec=evil' } }, 'config.model', /no leading -/],
    ['a model climbing out', { type: 'benchmark', name: 'x', config: { model: 'org/../../etc/passwd' } }, 'config.model', /no \.\./],
    ['an absolute model', { type: 'benchmark', name: 'x', config: { model: '/etc/passwd' } }, 'config.model', /not absolute/],
    ['a model with a NUL', { type: 'benchmark', name: 'x', config: { model: 'm\u0000x' } }, 'config.model', /letters, digits/],
    ['a model segment that is an option', { type: 'benchmark', name: 'x', config: { model: 'org/-rf' } }, 'config.model', /no leading -/],
    ['a test_file with a NUL', { type: 'test', name: 'x', config: { test_file: 'a\u0000.mjs' } }, 'config.test_file', /relative path/],
    ['a test_file that is an option', { type: 'test', name: 'x', config: { test_file: '--inspect=0.0.0.0' } }, 'config.test_file', /relative path/],
    ['a hidden test_file segment', { type: 'test', name: 'x', config: { test_file: 'a/.hidden/b.mjs' } }, 'config.test_file', /relative path/],
    ['an empty batch list', { type: 'benchmark', name: 'x', config: { model: 'm', batch_sizes: [] } }, 'config.batch_sizes', /at least one/],
    ['a probability above 1', { type: 'synthetic', name: 'x', config: { fail_probability: 2 } }, 'config.fail_probability', /from 0 to 1/],
    ['a non-numeric metric', { type: 'synthetic', name: 'x', config: { metrics: { latency_ms: 'fast' } } }, 'config.metrics.latency_ms', /number/],
    ['an unknown requirement', { type: 'synthetic', name: 'x', hardware_requirements: { tpu: 1 } }, 'hardware_requirements.tpu', /unknown field/],
    [
      'a negative memory requirement',
      { type: 'synthetic', name: 'x', hardware_requirements: { memory_gb: -1 } },
      'hardware_requirements.memory_gb',
      /positive/,
    ],
    ['a non-string label', { type: 'synthetic', name: 'x', labels: { team: 1 } }, 'labels.team', /strings/],
    ['half a surrogate pair in a label', { type: 'synthetic', name: 'x', labels: { commit: 'ab\ud800' } }, 'labels.commit', /Unicode text/],
    ['half a surrogate pair in the name', { type: 'synthetic', name: '\udc00x' }, 'name', /Unicode text/],
    [
      'requirements in both places',
      { type: 'test', name: 'x', hardware_requirements: {}, config: { test_file: 'a.mjs', hardware_requirements: {} } },
      'config.hardware_requirements',
      /both/,
    ],
  ])('refuses %s, naming the field', (_label, input, field, reason) => {
    const errors = errorsOf(input);
    expect(errors).toEqual(expect.arrayContaining([expect.objectContaining({ field, reason: expect.stringMatching(reason) })]));
  });
});

describe('parseTaskList', () => {
  it('accepts the seed file shape', () => {
    const r = parseTaskList({
      tasks: [
        { type: 'synthetic', name: 'a' },
        { type: 'synthetic', name: 'b' },
      ],
    });
    expect(r.ok && r.value.map((t) => t.name)).toEqual(['a', 'b']);
  });

  it('names the index of every bad task', () => {
    const r = parseTaskList({ tasks: [{ type: 'synthetic', name: 'a' }, { type: 'synthetic' }, { type: 'x', name: 'c' }] });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.map((e) => e.field)).toEqual(['tasks[1].name', 'tasks[2].type']);
  });

  it.each([
    [[], 'tasks', /at least one/],
    [undefined, 'tasks', /required/],
    ['x', 'tasks', /array/],
  ])('refuses tasks=%p', (tasks, field, reason) => {
    const r = parseTaskList({ tasks });
    expect(!r.ok && r.errors[0]).toEqual({ field, reason: expect.stringMatching(reason) });
  });

  it('refuses a batch over the limit and unknown top-level fields', () => {
    const r = parseTaskList({ tasks: new Array(10_001).fill({ type: 'synthetic', name: 'a' }), extra: true });
    expect(!r.ok && r.errors.map((e) => e.field).sort()).toEqual(['extra', 'tasks']);
  });
});
