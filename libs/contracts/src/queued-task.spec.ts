import { compactQueuedTask, parseQueuedTask } from './queued-task.js';
import { parseTask, type Task } from './task.js';

const task = (input: object): Task => {
  const r = parseTask(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};

const samples: Task[] = [
  task({ type: 'synthetic', name: 'noop' }),
  task({ type: 'synthetic', name: 'busy', priority: 7, config: { duration_ms: 5, mode: 'cpu', metrics: { acc: 0.5 } }, labels: { commit: 'abc' } }),
  task({ type: 'test', name: 'unit', config: { test_file: 'tests/a.test.js' }, max_attempts: 3, retry_backoff_ms: 0, timeout_ms: 5000 }),
  task({ type: 'benchmark', name: 'bert', config: { model: 'prajjwal1/bert-tiny', batch_sizes: [1, 8] }, hardware_requirements: { gpu: 1 } }),
  task({ type: 'test', name: 'k', config: { test_file: 'a.js' }, idempotency_key: 'key-1', labels: { branch: 'main' } }),
];

describe('compactQueuedTask', () => {
  it('leaves out every field that equals its default, and parseQueuedTask restores the whole task', () => {
    for (const t of samples) {
      const compact = compactQueuedTask(t, 'ci');
      const back = parseQueuedTask(JSON.parse(JSON.stringify(compact)));
      expect(back).toEqual({ ok: true, value: { ...t, submitted_by: 'ci' } });
    }
    expect(compactQueuedTask(samples[0], 'ci')).toEqual({ type: 'synthetic', name: 'noop', config: {}, submitted_by: 'ci' });
    expect(JSON.stringify(compactQueuedTask(samples[0], 'ci')).length).toBeLessThan(JSON.stringify(samples[0]).length / 3);
  });

  it('keeps what differs from a default, down to one config field, and the run', () => {
    const c = compactQueuedTask(samples[2], 'ci', { id: 'r-abcdef-0123abcd', key: 'tests/a.test.js' });
    expect(c).toEqual({
      type: 'test',
      name: 'unit',
      config: { test_file: 'tests/a.test.js' },
      max_attempts: 3,
      retry_backoff_ms: 0,
      timeout_ms: 5000,
      submitted_by: 'ci',
      run: { id: 'r-abcdef-0123abcd', key: 'tests/a.test.js' },
    });
    expect(compactQueuedTask(samples[1], 'ci').config).toEqual({ duration_ms: 5, mode: 'cpu', metrics: { acc: 0.5 } });
  });
});

describe('parseQueuedTask', () => {
  const base = { type: 'synthetic', name: 'noop', config: {}, submitted_by: 'ci' };
  it.each([
    [{ ...base, priority: 5000 }, 'priority'],
    [{ ...base, priority: 1.5 }, 'priority'],
    [{ ...base, extra: 1 }, 'extra'],
    [{ ...base, config: { duration_ms: -1 } }, 'config.duration_ms'],
    [{ ...base, config: { mode: 'spin' } }, 'config.mode'],
    [{ ...base, labels: { '-x': 'y' } }, 'labels["-x"]'],
    [{ ...base, labels: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'v'])) }, 'labels'],
    [{ ...base, name: '' }, 'name'],
    [{ ...base, type: 'shell' }, 'type'],
    [{ type: 'test', name: 't', config: { test_file: '../etc/passwd' }, submitted_by: 'ci' }, 'config.test_file'],
    [{ type: 'test', name: 't', config: { test_file: '-rf' }, submitted_by: 'ci' }, 'config.test_file'],
    [{ type: 'benchmark', name: 'b', config: { model: '/abs' }, submitted_by: 'ci' }, 'config.model'],
    [{ ...base, hardware_requirements: { gpu: 'yes' } }, 'hardware_requirements.gpu'],
  ])('refuses a malformed payload and names the field (%#)', (payload, field) => {
    const r = parseQueuedTask(payload);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.field)).toContain(field);
  });

  it('trims a name and adds a benchmark model label, as the coordinator does, for hand-written payloads', () => {
    const r = parseQueuedTask({ ...base, name: '  spaced  ' });
    expect(r.ok && r.value.name).toBe('spaced');
    const b = parseQueuedTask({ type: 'benchmark', name: 'b', config: { model: 'm1' } });
    expect(b.ok && b.value.labels).toEqual({ model_name: 'm1' });
    expect(b.ok && b.value.submitted_by).toBe('anonymous');
  });

  it('accepts the seed spelling of hardware requirements inside config', () => {
    const r = parseQueuedTask({ ...base, config: { hardware_requirements: { cpu: true } } });
    expect(r.ok && r.value.hardware_requirements).toEqual({ cpu: true });
  });
});
