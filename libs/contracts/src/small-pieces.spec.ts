import { extensionOf, fillArgv, placeholdersIn, unknownPlaceholders } from './command-template.js';
import { formatPath } from './field-error.js';
import { fromQueuePriority, toQueuePriority } from './priority.js';
import { newTaskId, poolOfTaskId } from './task-id.js';
import { decodeFailure, encodeFailure, tail } from './task-outcome.js';
import { toTaskState } from './task-state.js';
import { exitMeaning, runsWarm } from './worker-template.js';

describe('priority mapping (larger is more urgent; BullMQ runs its smallest first)', () => {
  it.each([
    [0, 1001],
    [5, 996],
    [10, 991],
    [1000, 1],
  ])('%i → %i and back', (priority, queue) => {
    expect(toQueuePriority(priority)).toBe(queue);
    expect(fromQueuePriority(queue)).toBe(priority);
  });

  it('keeps the order: a more urgent task gets a smaller queue priority', () => {
    expect(toQueuePriority(20)).toBeLessThan(toQueuePriority(10));
  });

  it.each([-1, 1001, 1.5, Number.NaN])('refuses %p', (p) => {
    expect(() => toQueuePriority(p)).toThrow(RangeError);
  });
});

describe('task ids name their pool', () => {
  it('round-trips', () => {
    const id = newTaskId('cpu-worker');
    expect(id).toMatch(/^cpu-worker\.[0-9a-f-]{36}$/);
    expect(poolOfTaskId(id)).toBe('cpu-worker');
    expect(newTaskId('cpu')).not.toBe(newTaskId('cpu'));
  });

  it.each(['hello', 'cpu.', 'cpu.1234', 'CPU.8d6f6a36-6f0e-4a43-9b0f-0d8f2f0f5d11', 'a:b.8d6f6a36-6f0e-4a43-9b0f-0d8f2f0f5d11', ''])(
    'is not fooled by %p',
    (id) => expect(poolOfTaskId(id)).toBeUndefined(),
  );
});

describe('command templates', () => {
  it('fills placeholders inside arguments without splitting them', () => {
    expect(fillArgv(['node', '--test', '{test_file}', '--model={model}'], { test_file: 'a b;rm -rf.mjs', model: 'x' })).toEqual([
      'node',
      '--test',
      'a b;rm -rf.mjs',
      '--model=x',
    ]);
  });

  it('finds unknown placeholders and refuses to run with a missing value', () => {
    expect(placeholdersIn('{a}-{b}')).toEqual(['a', 'b']);
    expect(unknownPlaceholders(['{test_file}', '{tset_file}'], ['test_file'])).toEqual(['tset_file']);
    expect(() => fillArgv(['{model}'], {})).toThrow('no value for placeholder {model}');
  });

  it.each([
    ['a/b/test.spec.mjs', '.mjs'],
    ['test_cpu.py', '.py'],
    ['Makefile', ''],
    ['.hidden', ''],
  ])('extension of %s is %p', (file, ext) => expect(extensionOf(file)).toBe(ext));
});

describe('failures', () => {
  it('round-trip through their encoding', () => {
    const f = { reason: 'timeout' as const, message: 'too slow', exit_code: 143, output_tail: 'x' };
    expect(decodeFailure(encodeFailure(f))).toEqual(f);
  });

  it.each([
    ['job stalled more than allowable limit', 'stalled'],
    ['{"not":"ours"}', 'worker_error'],
    ['boom', 'worker_error'],
  ])('classifies BullMQ’s own message %p as %s', (text, reason) => {
    expect(decodeFailure(text)).toEqual({ reason, message: text });
  });

  it('is null for no failure, and tails keep the end', () => {
    expect(decodeFailure(undefined)).toBeNull();
    expect(tail('abcdef', 3)).toBe('def');
    expect(tail('ab', 3)).toBe('ab');
  });
});

describe('task states and field paths', () => {
  it.each([
    ['waiting', 'queued'],
    ['prioritized', 'queued'],
    ['delayed', 'queued'],
    ['active', 'active'],
    ['completed', 'completed'],
    ['failed', 'failed'],
    ['unknown', undefined],
  ])('%s → %p', (q, s) => expect(toTaskState(q)).toBe(s));

  it.each([
    [[], 'body'],
    [['tasks', 3, 'priority'], 'tasks[3].priority'],
    [['runners', 'test', '.mjs', 1], 'runners.test[".mjs"][1]'],
  ])('%p → %s', (path, text) => expect(formatPath(path)).toBe(text));
});

describe("a test runner's exit codes", () => {
  const runners = {
    test: { '.py': ['python3', '-m', 'pytest', '{test_file}'], '.t': ['/usr/bin/pytest', '{test_file}'], '.sh': ['sh', '{test_file}'] },
    exit_codes: { '.sh': { '3': 'skipped' as const, '1': 'passed' as const } },
  };
  it.each([
    ['.py', 0, 'passed'],
    ['.py', 5, 'skipped'], // pytest: no tests collected
    ['.t', 5, 'skipped'],
    ['.py', 1, 'failed'],
    ['.sh', 3, 'skipped'], // declared
    ['.sh', 1, 'passed'],
    ['.sh', 5, 'failed'], // not pytest, not declared
    ['.mjs', 5, 'failed'],
  ] as const)('%s exit %i → %s', (ext, code, meaning) => {
    expect(exitMeaning(runners, ext, code)).toBe(meaning);
  });
});

describe('which runners run warm', () => {
  const test = {
    '.py': ['python3', '-m', 'pytest', '{test_file}'],
    '.t': ['/usr/bin/pytest', '{test_file}'],
    '.mjs': ['node', '--test', '{test_file}'],
  };
  it.each([
    [{}, '.py', true], // pytest: on by default
    [{}, '.t', true],
    [{}, '.mjs', false], // not pytest
    [{ '.py': false }, '.py', false], // turned off
    [{ '.py': false }, '.t', true],
    [{}, '.rb', false], // no runner
  ] as const)('warm %p, %s → %p', (warm, ext, expected) => {
    expect(runsWarm({ test, warm }, ext)).toBe(expected);
  });
});
